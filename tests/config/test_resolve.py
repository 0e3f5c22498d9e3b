"""Recipe files: their schema, read by load_spec."""

import pytest

from workbench.config import resolve
from workbench.config.errors import ConfigError
from workbench.config.resolve import RecipeFile


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
