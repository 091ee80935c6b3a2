"""The make variables each goal takes, checked at the command-line edge: a misspelt variable, or one the goal does
not take (`make report COPIES=8`), is one clear error instead of being silently ignored. Standard library only,
so make can check before the virtual environment exists."""
from __future__ import annotations

import sys

from .registry import did_you_mean


class MakeVariableError(ValueError):
    """A make variable no goal of the call takes."""


# Command-line knobs of the study (make variables) and the setting each overrides; ARCH and LAYERS narrow the run.
KNOBS = {"EPOCHS": "epochs", "BATCH_SIZE": "batch_size", "DECODER": "decoder", "WIDTH": "width", "LIMIT": "limit",
         "MATCH": "match_steps", "ARCH": "arch", "LAYERS": "layers", "DIV2K_DIR": "div2k_dir",
         "NORMALISATION": "normalisation", "SEEDS": "seeds", "DECODER_PARAMS": "decoder_params", "FEEDBACK": "feedback"}
# make variables every goal takes
COMMON_MAKE_VARIABLES = {"PROFILE", "REPORTS", "VENV", "PYTHON", "JOBS", "GPUS", "LAUNCH"}
# make variables each target takes besides COMMON_MAKE_VARIABLES; a target not listed is a study target (KNOBS)
TARGET_VARIABLES = {
    # the benchmarks that train run a profile's settings (PROFILE=); these knobs of the study override them
    "bench-quality": {"ARCH", "LAYER", "TRAIN_DIR", "VAL_DIR", "TEST_DIR", "TRAIN_ON_TEST_COPIES", "WEIGHTS", "MINUTES",
                      "VIEWS", "OUT", "EPOCHS", "BATCH_SIZE", "DECODER", "WIDTH", "FEEDBACK", "MATCH", "NORMALISATION"},
    "bench-ablation": {"ARCH", "LAYER", "MECHANISM", "TRAIN_DIR", "VAL_DIR", "TEST_DIR", "WEIGHTS", "OUT", "EPOCHS",
                       "BATCH_SIZE", "DECODER", "WIDTH", "FEEDBACK", "MATCH", "NORMALISATION"},
    "bench-offline": {"MINUTES", "EPOCHS", "ONLY"},
    "bench-learned": {"MINUTES", "EPOCHS", "ONLY"},
    "bench-colour": {"ARCH", "LAYER", "TRAIN_DIR", "TEST_DIR", "WEIGHTS", "COPIES", "INDOMAIN_COPIES", "OUT"},
    "bench-speed": {"OUT", "BATCH_SIZE", "WIDTH"},
    "bench-projection": {"OUT", "TFLOPS"},
    "gpu-check": {"OUT"},
    "bench-photos": set(),
    "colab": {"REPO", "BRANCH"},
    "invert": {*KNOBS, "IMAGES"},
    **{goal: set() for goal in ("help", "venv", "system-deps", "test", "profiles", "clean", "clean-all", "deps")},
}


def check_make_variables(goals: list[str], names: list[str]) -> None:
    """One clear error for a make variable that no goal of this call takes (`make report COPIES=8`)."""
    goals = goals or ["report"]
    allowed = set(COMMON_MAKE_VARIABLES)
    for goal in goals:
        allowed |= TARGET_VARIABLES.get(goal, set(KNOBS))
    for name in names:
        if name in allowed:
            continue
        everything = sorted(set(KNOBS) | COMMON_MAKE_VARIABLES | set().union(*TARGET_VARIABLES.values()))
        takers = sorted(goal for goal, names_ in TARGET_VARIABLES.items() if name in names_)
        if takers:
            raise MakeVariableError(f"{name} does not apply to `make {' '.join(goals)}`: it is a setting of "
                               f"{', '.join(takers)}. Variables {' '.join(goals)} takes: {', '.join(sorted(allowed))}.")
        raise MakeVariableError(f"unknown setting '{name}'.{did_you_mean(name, everything)} Valid settings: "
                           f"{', '.join(sorted(allowed))}.")


def parse_make_overrides(text: str) -> dict[str, str]:
    """MAKEOVERRIDES looks like 'EPOCHS=2 PROFILE=tiny -- ...'; keep the NAME=value words."""
    pairs = {}
    for word in text.split():
        if "=" in word and not word.startswith("-"):
            name, value = word.split("=", 1)
            pairs[name.strip(":")] = value
    return pairs


def main(argv=None) -> int:
    """python -m lib.knobs GOALS OVERRIDES: exit 2 with the error when a variable does not apply."""
    goals, overrides = [*(sys.argv[1:] if argv is None else argv), "", ""][:2]
    try:
        check_make_variables(goals.split(), list(parse_make_overrides(overrides)))
    except MakeVariableError as error:
        print(f"error: {error}")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
