"""Small, permissively licensed datasets that ship with DSAssist.

titanic, mpg and tips come from the seaborn-data repository (BSD-3-Clause);
penguins is the palmerpenguins data (CC0).
"""

from pathlib import Path

HERE = Path(__file__).parent


def path(name: str) -> Path:
    """The CSV file of a shipped example, e.g. `path("titanic")`."""
    return HERE / f"{name}.csv"
