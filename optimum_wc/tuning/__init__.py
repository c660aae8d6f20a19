"""Auto-tuning: the smallest compressed model within an accuracy budget, and the Pareto table that shows it.

```python
from optimum_wc.tuning import tune

result = tune("models/tiny-llama-pydoc", "outputs/tuned", dataset="valid.txt", max_perplexity_increase="5%")
result.chosen.candidate.name, result.chosen.size_bytes
```
"""

from optimum_wc.tuning.budget import BUDGETS, Budget
from optimum_wc.tuning.report import Trial, TuningResult, pareto_front
from optimum_wc.tuning.scorers import Scores
from optimum_wc.tuning.search import Candidate, SearchSpace, parse_search
from optimum_wc.tuning.tuner import tune

__all__ = [
    "BUDGETS",
    "Budget",
    "Candidate",
    "Scores",
    "SearchSpace",
    "Trial",
    "TuningResult",
    "pareto_front",
    "parse_search",
    "tune",
]
