"""Urgency on real bug reports (GitBugs Hadoop priorities), beside a majority-class baseline.

The Hadoop set has priorities but no categories, so the production loop cannot propose for it
(no category fits a ticket of a deployment without categories); this measures the offline
backend's urgency model itself, on the test split (priority mapped as in the README: Blocker
urgent, Critical high, Major normal, Minor and Trivial low):

- the urgency model as a deployment without labelled history has it (the written urgency
  corpus alone);
- the urgency model once the dev split is this deployment's labelled history (history plus
  the corpus, as ``model_store`` trains it);
- always answering the most frequent level of the dev split (the majority-class baseline).

    .venv/bin/python benchmarks/urgency.py \\
        ../shared/data/gitbugs-hadoop-priority/hadoop_bugs_priority.jsonl

Needs no database. Nothing was tuned on this data.
"""

import argparse
import json
import os
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "triage.settings")
os.environ.setdefault("DJANGO_SECRET_KEY", "benchmark-only")
import django

django.setup()

from agent.workflows.support_triage import learning, model_store  # noqa: E402
from agent.workflows.support_triage.injection import visible_request  # noqa: E402
from agent.workflows.support_triage.learning import Row  # noqa: E402

PRIORITY = {"Blocker": "urgent", "Critical": "high", "Major": "normal", "Minor": "low"}
PRIORITY["Trivial"] = "low"


def rows(path: Path, split: str) -> list[Row]:
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        if item.get("split") == split and item.get("priority") in PRIORITY:
            text = learning.ticket_text(item.get("summary", ""), item.get("description") or "")
            found.append(Row(visible_request(text), PRIORITY[item["priority"]], item["id"]))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path)
    args = parser.parse_args()
    dev, test = rows(args.file, "dev"), rows(args.file, "test")
    corpus = model_store._corpus_models()
    majority, _ = Counter(row.label for row in dev).most_common(1)[0]
    with_history = learning.label_model_train(dev, corpus.rows.urgency)
    models = [("written urgency corpus alone", corpus.models.urgency)]
    models.append((f"+ {len(dev)} dev rows as history", with_history))
    print(f"{args.file.name}: {len(dev)} dev rows, {len(test)} test rows")
    print(f"  test levels: {dict(sorted(Counter(row.label for row in test).items()))}")
    share = sum(row.label == majority for row in test) / len(test)
    print(f"  majority class ({majority}, from dev): {share:.3f}")
    for name, model in models:
        if model is None:
            print(f"  {name}: too little data for a model")
            continue
        accuracy = learning.accuracy(model, test) or 0.0
        per_level = learning.recall_by(model, test, "label")
        shown = ", ".join(f"{level} {v['accuracy']:.2f}" for level, v in per_level.items())
        print(f"  {name}: {accuracy:.3f} (recall by level: {shown})")


if __name__ == "__main__":
    main()
