"""Base recipes: schema defaults plus dotted overrides, and profiles that scale them (micro, paper, smoke)."""
