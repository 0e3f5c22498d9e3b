"""Recipe files: their schema, the profiles they define, and profile names checked against them."""

import pytest
from pydantic import BaseModel, ValidationError

from workbench.config import resolve
from workbench.config.errors import ConfigError
from workbench.config.resolve import Profile, RecipeFile, read_recipe, recipe_profiles


def test_profiles_come_from_the_recipe_files():
    profiles = recipe_profiles()
    assert profiles == list(read_recipe("clip")[1].profiles)
    assert {"micro", "paper", "smoke"} <= set(profiles) and len(set(profiles)) == len(profiles)


def test_a_profile_field_takes_a_recipe_profile_and_lists_them_when_not():
    class Holder(BaseModel):
        profile: Profile = "micro"

    assert Holder(profile="smoke").profile == "smoke"
    with pytest.raises(ValidationError, match="Input should be 'micro', 'paper' or 'smoke'"):
        Holder(profile="huge")


def test_a_new_recipe_file_adds_its_profiles(tmp_path, monkeypatch):
    (tmp_path / "clip.yaml").write_text("profiles: {micro: {}, smoke: }\n")
    (tmp_path / "big.yaml").write_text("base: {train.steps: 5}\nprofiles: {micro: {}, huge: {train.steps: 9}}\n")
    monkeypatch.setattr(resolve, "_recipes_dir", lambda: tmp_path)
    assert recipe_profiles() == ["micro", "huge", "smoke"]
    assert resolve.load_recipe_layers("big", "huge")[1][1] == {"train.steps": 9}
    assert resolve.load_recipe_layers("clip", "smoke")[0][1] == {}


@pytest.mark.parametrize("text, message", [
    ("- 1\n", "(top level): a recipe is a mapping with `base` and `profiles`, got list"),
    ("base: {}\nprofile: {}\n", "profile: unknown key; allowed here: base, profiles"),
    ("profiles: {micro: [1]}\n", "profiles.micro: Input should be a valid dictionary"),
])
def test_a_malformed_recipe_file_names_the_key(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        resolve._read_recipe(path, 0)
    assert str(error.value) == f"{path}: {message}"


def test_empty_sections_override_nothing(tmp_path):
    assert RecipeFile.model_validate(None) == RecipeFile()
    assert RecipeFile.model_validate({"base": None, "profiles": {"micro": None}}).profiles == {"micro": {}}
