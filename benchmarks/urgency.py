"""The offline backend's urgency model, each figure beside a majority-class baseline.

Without a database, on the model itself (the production loop needs categories to propose):

1. held-out situations of the written urgency corpus (a seeded quarter of its situations;
   the model trained on the rest, on the judgement features, as in production);
2. the labelled urgencies of the `release` (held out) and `core` (development) suites, with the
   model as a deployment without labelled history has it (trained on the whole corpus);
3. with ``--hadoop FILE``, real bug reports (GitBugs Hadoop priorities, mapped as in the README:
   Blocker urgent, Critical high, Major normal, Minor and Trivial low), on the test split: the
   corpus model, and the model once the dev split is this deployment's history.

``--rules FILE`` measures a module with ``urgency_from_definitions(text)`` on the same cases,
for instance the keyword rules the model replaced:

    git show d7c554c:agent/workflows/support_triage/urgency.py > /tmp/old_urgency.py
    .venv/bin/python benchmarks/urgency.py --rules /tmp/old_urgency.py \\
        --hadoop ../shared/data/gitbugs-hadoop-priority/hadoop_bugs_priority.jsonl

Nothing was tuned on any of these figures: the model has no urgency-specific setting.
"""

import argparse
import importlib.util
import json
import os
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "triage.settings")
os.environ.setdefault("DJANGO_SECRET_KEY", "benchmark-only")
import django

django.setup()

from agent.workflows.support_triage import learning, model_store  # noqa: E402
from agent.workflows.support_triage.injection import visible_request  # noqa: E402
from agent.workflows.support_triage.learning import Classifier, Row  # noqa: E402

SUITES = Path(__file__).resolve().parent.parent / "evaluations" / "suites"
PRIORITY = {"Blocker": "urgent", "Critical": "high", "Major": "normal", "Minor": "low"}
PRIORITY["Trivial"] = "low"

Decide = Callable[[str], str]


def hadoop_rows(path: Path, split: str) -> list[Row]:
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        if item.get("split") == split and item.get("priority") in PRIORITY:
            text = learning.ticket_text(item.get("summary", ""), item.get("description") or "")
            found.append(Row(visible_request(text), PRIORITY[item["priority"]], item["id"]))
    return found


def suite_rows(name: str) -> list[Row]:
    cases = json.loads((SUITES / f"{name}.json").read_text(encoding="utf-8"))
    return [
        Row(
            visible_request(learning.ticket_text(c["ticket"]["subject"], c["ticket"]["body"])),
            c["expected_urgency"],
            c["id"],
        )
        for c in cases
        if c.get("expected_urgency")
    ]


def by_model(model: Classifier) -> Decide:
    return lambda text: max(model.probabilities(text).items(), key=lambda item: item[1])[0]


def by_rules(path: Path) -> Decide:
    spec = importlib.util.spec_from_file_location("urgency_rules", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return lambda text: (module.urgency_from_definitions(text) or ("normal",))[0]


def report(title: str, rows: Sequence[Row], deciders: dict[str, Decide]) -> None:
    """Each decider's accuracy, beside always answering the rows' own most frequent level
    (what ``run_evals`` calls the majority-class baseline)."""
    majority, count = Counter(row.label for row in rows).most_common(1)[0]
    share = count / len(rows)
    print(f"{title} ({len(rows)} cases): majority class ({majority}) {share:.3f}")
    for name, decide in deciders.items():
        right = sum(decide(row.text) == row.label for row in rows) / len(rows)
        print(f"  {name}: {right:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hadoop", type=Path, help="the GitBugs Hadoop priority JSONL")
    parser.add_argument("--rules", type=Path, help="a module with urgency_from_definitions")
    args = parser.parse_args()
    corpus = model_store._corpus_models()
    features = corpus.models.outcome.features
    rules = {"keyword rules": by_rules(args.rules)} if args.rules else {}

    train, test = learning.split_by_group(corpus.rows.urgency, held_out=0.25)
    held_out_model = learning.classifier_train(train, features, blind_to_length=True)
    deciders = {"urgency model": by_model(held_out_model), **rules}
    report("urgency corpus, held-out situations", test, deciders)

    assert corpus.models.urgency is not None
    deciders = {"urgency model (corpus alone)": by_model(corpus.models.urgency), **rules}
    for suite in ("release", "core"):
        report(f"suite {suite}", suite_rows(suite), deciders)

    if args.hadoop:
        dev, hadoop = hadoop_rows(args.hadoop, "dev"), hadoop_rows(args.hadoop, "test")
        with_history = learning.label_model_train(dev, corpus.rows.urgency, blind_to_length=True)
        assert with_history is not None
        deciders = {
            "urgency model (corpus alone)": by_model(corpus.models.urgency),
            f"+ {len(dev)} dev rows as history": by_model(with_history),
            **rules,
        }
        report("GitBugs Hadoop, test split", hadoop, deciders)


if __name__ == "__main__":
    main()
