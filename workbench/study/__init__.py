"""Study expansion into trials, planning, the stage cache and Optuna orchestration."""
