"""Every common encoder: tiny random BERT, RoBERTa, DistilBERT, DeBERTa-v2, ELECTRA,
XLM-RoBERTa, ModernBERT and MPNet models, each with a tokenizer trained here with `tokenizers`
(WordPiece, byte-level BPE or Unigram, wrapped in the family's own tokenizer class; nothing is
downloaded), times classification / NER / QA, times full / LoRA (merged and adapter-only) /
head-only. Each case trains two steps in this process with `training.train` (what the worker
runs), exports, reloads the export in plain transformers (base + peft for an adapter) and must
predict what `Predictor` predicts."""

from __future__ import annotations

import json
import random
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from conftest import card_logits, card_recipe, sentiment_rows, write_csv, write_jsonl

pytest.importorskip("peft")

FAMILIES = ("bert", "roberta", "distilbert", "deberta-v2", "electra", "xlm-roberta",
            "modernbert", "mpnet")
TASKS = ("classification", "ner", "qa", "multi-label", "regression")
METHODS = ("full", "lora", "lora-adapter", "head")  # see _cases() for the matrix
# the class AutoTokenizer gives back for the saved tokenizer of each family
TOKENIZER_CLASS = {"bert": "BertTokenizer", "roberta": "RobertaTokenizer",
                   "distilbert": "DistilBertTokenizer", "deberta-v2": "DebertaV2Tokenizer",
                   "electra": "BertTokenizer", "xlm-roberta": "XLMRobertaTokenizer",
                   "modernbert": "TokenizersBackend", "mpnet": "MPNetTokenizer"}
BYTE_LEVEL = ("roberta", "modernbert")
TIE = 1e-5  # top-two probabilities this close: either answer is right
# Predictor (texts batched and padded together) against one text at a time: float32 noise of
# about 1e-6 in the features, times a head fitted to convergence (weights far larger than a
# random head's), moves a probability by up to a few 1e-4
PROB = 1e-3

PEOPLE = ["Ann Lee", "Bo Chen", "Cy Diaz", "Dee Ray", "Eli Moss", "Fay Wu"]
PLACES = ["Oslo", "Lima", "Rome", "Kyoto", "Cairo", "Quito"]
PROSE = """The harbour town woke early. Fishing boats left before dawn and came back at noon
with herring, cod and crabs. Ann Lee ran the market on the quay, and Bo Chen repaired nets in
the shed behind the old church. In winter the river froze and the children skated to the mill.
Travellers from Oslo, Lima and Rome came by ferry; a few stayed for a week, most left the same
evening. The museum holds maps, letters and a clock that has not stopped since 1889. People say
the food is lovely and the weather is awful, which is true on most days. A new school opened in
the spring, and the mayor promised a bridge, a library and a better road to the station. Some
reviews of the hotel were superb, others dreadful; the film shown at the festival was boring to
some and wonderful to others. Eli Moss wrote a book about the town and Fay Wu sang a song about
the sea. The chief of the fire brigade met the council today. Questions were asked: where does
the road go, when was the bridge built, who founded the town? Nobody could say for sure."""

NER_PROBES = [["Fay", "Wu", "visited", "Kyoto", "on", "Monday", "."],
              ["the", "chief", "of", "Cairo", "met", "Eli", "Moss", "today", "."]]
TEXT_PROBES = ["the hotel number 7 was superb", "the song was dreadful and clumsy",
               "a lovely meal"]
QA_PROBES = [("Where does town 5 lie?", "Town 5 lies on river R5."),
             ("When was town 9 founded?", "It was founded in 1009.")]


# ---------------------------------------------------------------------------- data


def ner_sentences(n: int = 48) -> list[tuple[list[str], list[str]]]:
    rng = random.Random(0)
    out = []
    for i in range(n):
        person, place, other = rng.choice(PEOPLE).split(), *rng.sample(PLACES, 2)
        if i % 3 == 0:
            tokens = [*person, "visited", place, "on", "day", str(i), "."]
            tags = ["B-PER", "I-PER", "O", "B-LOC", "O", "O", "O", "O"]
        elif i % 3 == 1:
            tokens = ["the", "chief", "of", place, "met", *person, "today", "."]
            tags = ["O", "O", "O", "B-LOC", "O", "B-PER", "I-PER", "O", "O"]
        else:
            tokens = [*person, "flew", "from", place, "to", other, "in", str(1900 + i), "."]
            tags = ["B-PER", "I-PER", "O", "O", "B-LOC", "O", "B-LOC", "O", "O", "O"]
        out.append((tokens, tags))
    return out


def qa_rows(n: int = 12) -> list[dict]:
    rows = []
    for i in range(n):
        context = f"Town {i} lies on river R{i}. It was founded in {1000 + i}."
        rows += [{"question": f"Where does town {i} lie?", "context": context,
                  "answer_text": f"river R{i}"},
                 {"question": f"When was town {i} founded?", "context": context,
                  "answer_text": str(1000 + i)}]
    return rows


TOPICS = {"food": ["soup", "bread", "cheese"], "weather": ["rain", "snow", "wind"],
          "travel": ["ferry", "train", "road"]}


def multilabel_rows(n: int = 60) -> list[dict]:
    """Texts about none, one or two of three topics, labels joined by ';'."""
    rng = random.Random(1)
    rows = []
    for i in range(n):
        chosen = sorted(rng.sample(list(TOPICS), i % 3))
        words = [rng.choice(TOPICS[t]) for t in chosen] + ["the", "town", str(i)]
        rng.shuffle(words)
        rows.append({"text": " ".join(words), "labels": ";".join(chosen)})
    return rows


def regression_rows(n: int = 60) -> list[dict]:
    """A score that grows with the number of good words in the text."""
    rng = random.Random(2)
    rows = []
    for i in range(n):
        good = i % 5
        words = ["superb"] * good + ["dull"] * (4 - good) + ["film", str(i)]
        rng.shuffle(words)
        rows.append({"review": " ".join(words), "score": round(good + rng.random() * 0.5, 3)})
    return rows


@cache
def corpus() -> tuple[str, ...]:
    lines = [r["text"] for r in sentiment_rows(60)]
    lines += [r["text"] for r in multilabel_rows()] + [r["review"] for r in regression_rows()]
    lines += [" ".join(tokens) for tokens, _ in ner_sentences()]
    lines += [r["question"] + " " + r["context"] for r in qa_rows()]
    lines += [" ".join(words) for words in NER_PROBES] + TEXT_PROBES
    lines += [q + " " + c for q, c in QA_PROBES]
    lines += [line.strip() for line in PROSE.splitlines()]
    return tuple(lines)


@pytest.fixture(scope="module")
def data_files(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("arch-data")
    ner = tmp / "ner.conll"
    ner.write_text("\n\n".join("\n".join(f"{w} {t}" for w, t in zip(*s))
                               for s in ner_sentences()) + "\n", encoding="utf-8")
    return {"classification": write_csv(tmp / "reviews.csv", sentiment_rows(60)),
            "ner": ner, "qa": write_jsonl(tmp / "qa.jsonl", qa_rows()),
            "multi-label": write_csv(tmp / "topics.csv", multilabel_rows()),
            "regression": write_csv(tmp / "scores.csv", regression_rows())}


# ---------------------------------------------------------------------------- tokenizers


def _wordpiece(cls, specials=("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")):
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(corpus(), trainers.WordPieceTrainer(
        vocab_size=500, show_progress=False, special_tokens=list(specials)))
    return cls(vocab=tok.get_vocab())


def _byte_bpe(specials: list[str]):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator(corpus(), trainers.BpeTrainer(
        vocab_size=500, show_progress=False, special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    model = json.loads(tok.to_str())["model"]
    return tok, model["vocab"], [tuple(m) for m in model["merges"]]


def _unigram(specials: list[str], unk: str) -> list[tuple[str, float]]:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.train_from_iterator(corpus(), trainers.UnigramTrainer(
        vocab_size=400, show_progress=False, special_tokens=specials, unk_token=unk))
    return [tuple(v) for v in json.loads(tok.to_str())["model"]["vocab"]]


def family_tokenizer(family: str):
    import transformers as T

    if family in ("bert", "electra"):
        return _wordpiece(T.BertTokenizer if family == "bert" else T.ElectraTokenizerFast)
    if family == "distilbert":
        return _wordpiece(T.DistilBertTokenizer)
    if family == "mpnet":  # all-mpnet-base-v2's: WordPiece with RoBERTa-style specials
        return _wordpiece(T.MPNetTokenizer,
                          specials=["<s>", "<pad>", "</s>", "[UNK]", "<mask>"])
    if family == "roberta":
        _, vocab, merges = _byte_bpe(["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
        return T.RobertaTokenizer(vocab=vocab, merges=merges)
    if family == "modernbert":  # like the released one: a generic class over tokenizer.json
        from tokenizers import decoders, processors

        tok, _, _ = _byte_bpe(["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"])
        cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
            special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)])
        tok.decoder = decoders.ByteLevel()
        return T.PreTrainedTokenizerFast(
            tokenizer_object=tok, unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]",
            pad_token="[PAD]", mask_token="[MASK]",
            model_input_names=["input_ids", "attention_mask"])
    if family == "xlm-roberta":
        return T.XLMRobertaTokenizer(vocab=_unigram(["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
                                                    "<unk>"))
    if family == "deberta-v2":
        return T.DebertaV2Tokenizer(vocab=_unigram(["[PAD]", "[CLS]", "[SEP]", "[UNK]",
                                                    "[MASK]"], "[UNK]"))
    raise KeyError(family)


def family_model(family: str, tok):
    import transformers as T

    common = {"vocab_size": len(tok), "hidden_size": 32, "num_hidden_layers": 2,
              "num_attention_heads": 2, "intermediate_size": 64,
              "max_position_embeddings": 160, "pad_token_id": tok.pad_token_id}
    ids = {"bos_token_id": tok.cls_token_id, "eos_token_id": tok.sep_token_id}
    if family == "bert":
        return T.BertModel(T.BertConfig(**common))
    if family == "roberta":
        return T.RobertaModel(T.RobertaConfig(**common, **ids))
    if family == "xlm-roberta":
        return T.XLMRobertaModel(T.XLMRobertaConfig(**common, **ids))
    if family == "electra":
        return T.ElectraModel(T.ElectraConfig(**common, embedding_size=16))
    if family == "mpnet":  # relative position buckets, no token types
        return T.MPNetModel(T.MPNetConfig(**common, **ids))
    if family == "distilbert":
        return T.DistilBertModel(T.DistilBertConfig(
            vocab_size=len(tok), dim=32, n_layers=2, n_heads=2, hidden_dim=64,
            max_position_embeddings=160, pad_token_id=tok.pad_token_id))
    if family == "deberta-v2":  # DeBERTa-v3 style: relative positions, no absolute ones
        return T.DebertaV2Model(T.DebertaV2Config(
            **common, relative_attention=True, pos_att_type=["p2c", "c2p"],
            position_biased_input=False, position_buckets=32, norm_rel_ebd="layer_norm",
            share_att_key=True, type_vocab_size=0))
    if family == "modernbert":
        if not hasattr(T, "ModernBertConfig"):
            pytest.skip("this transformers has no ModernBERT (transformers.ModernBertConfig)")
        return T.ModernBertModel(T.ModernBertConfig(
            **common, **ids, cls_token_id=tok.cls_token_id, sep_token_id=tok.sep_token_id,
            global_attn_every_n_layers=2, local_attention=16))
    raise KeyError(family)


@pytest.fixture(scope="module")
def tiny_family(tmp_path_factory):
    """family -> folder with a random 2-layer model of that family and its tokenizer."""
    import torch

    built: dict[str, Path] = {}

    def get(family: str) -> Path:
        """'bert+mean': the same random BERT saved as a sentence-transformers body (its
        1_Pooling/config.json says mean pooling)."""
        if family not in built:
            base, _, pooling = family.partition("+")
            folder = tmp_path_factory.mktemp(f"tiny-{base}-{pooling or 'own'}")
            tok = family_tokenizer(base)
            torch.manual_seed(0)
            family_model(base, tok).save_pretrained(folder)
            tok.save_pretrained(folder)
            if pooling:
                (folder / "1_Pooling").mkdir()
                (folder / "1_Pooling" / "config.json").write_text(json.dumps(
                    {"word_embedding_dimension": 32, "pooling_mode_cls_token": False,
                     "pooling_mode_mean_tokens": True}))
            built[family] = folder
        return built[family]

    return get


# ---------------------------------------------------------------------------- one case


def train_in_process(tmp_path: Path, folder: Path, data: Path, task: str, method: str):
    from finetuner.config import RunConfig
    from finetuner.runs import EventWriter, create_run
    from finetuner.training import loop as training

    cfg = RunConfig.from_dict({
        "task": task,
        "data": {"train_file": str(data), "max_length": 64 if task == "qa" else 32,
                 "doc_stride": 24},
        "model": {"name_or_path": str(folder)},
        "method": {"method": "lora" if method.startswith("lora") else method, "lora_r": 4,
                   "export_adapter_only": method == "lora-adapter"},
        "training": {"epochs": 1, "max_steps": 2, "batch_size": 8, "train_eval_samples": 4,
                     "checkpoints": False, "early_stopping_patience": 0, "precision": "fp32"},
    })
    run = create_run(tmp_path / "runs", cfg)
    ctx = training.Context(run=run, config=cfg, events=EventWriter(run.events),
                           should_stop=lambda: False)
    return run, training.train(ctx)


def plain_model(task: str, model_dir: Path, meta: dict, base_folder: Path):
    """The export loaded the way the model card says: transformers alone, or the base model
    plus peft for an adapter-only export."""
    import transformers

    from finetuner.tasks import get_task

    auto = getattr(transformers, "AutoModelForTokenClassification"
                   if meta.get("body_pooling") == "mean" else get_task(task).auto_model)
    if meta["format"] != "peft-adapter":
        return auto.from_pretrained(model_dir).eval()
    from peft import PeftModel

    labels = meta.get("labels") or []
    kwargs = {"num_labels": len(labels), "id2label": dict(enumerate(labels)),
              "label2id": {n: i for i, n in enumerate(labels)}} if labels else {}
    if get_task(task).problem_type:
        kwargs["problem_type"] = get_task(task).problem_type
    base = auto.from_pretrained(base_folder, **kwargs)
    return PeftModel.from_pretrained(base, model_dir).merge_and_unload().eval()


def text_logits(model, enc, meta):
    """The sequence logits as the card reads them: the sequence head's, or for a mean-pooled
    export the mean of the token logits over the attention mask."""
    import torch

    with torch.no_grad():
        logits = model(**enc).logits
    if meta.get("body_pooling") != "mean":
        return logits
    mask = enc["attention_mask"].unsqueeze(-1).to(logits.dtype)
    return (logits * mask).sum(1) / mask.sum(1)


def softmax(x, temperature: float = 1.0) -> np.ndarray:
    """Probabilities as the model card says: softmax(logits / temperature)."""
    x = np.asarray(x, dtype="float64") / temperature
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def assert_same_choice(probs: np.ndarray, got: str, labels: list[str], what: str) -> None:
    top = np.sort(probs)[::-1]
    if len(top) > 1 and top[0] - top[1] < TIE:
        return
    assert got == labels[int(probs.argmax())], f"{what}: Predictor {got}, plain {probs}"


def check_classification(predictor, model, tok, meta):

    labels = meta["labels"]
    got = predictor.predict(TEXT_PROBES)
    for text, pred in zip(TEXT_PROBES, got):
        enc = tok(text, truncation=True, max_length=meta["max_length"], return_tensors="pt")
        probs = softmax(text_logits(model, enc, meta)[0].numpy(), meta.get("temperature", 1.0))
        assert np.allclose([pred["probabilities"][name] for name in labels], probs, atol=PROB)
        assert_same_choice(probs, pred["label"], labels, text)


def check_ner(predictor, model, tok, meta, folder, family):
    import torch

    from finetuner.models.modeling import load_tokenizer, resolve_model

    labels = meta["labels"]
    trained_with = load_tokenizer(resolve_model(str(folder)), split_words=True)
    if family in BYTE_LEVEL:
        assert tok.add_prefix_space and predictor.tokenizer.add_prefix_space
    raw = predictor.predict("Bo Chen visited Lima on day 3.")["tokens"]
    for words in [*NER_PROBES, raw]:
        ids = tok(words, is_split_into_words=True)["input_ids"]
        # the export encodes split words as training did, and as the same words typed as text
        assert ids == trained_with(words, is_split_into_words=True)["input_ids"]
        assert ids == predictor.tokenizer(words, is_split_into_words=True)["input_ids"]
        assert ids == tok(" ".join(words))["input_ids"], tok.convert_ids_to_tokens(ids)
        pred = predictor.predict_examples([{"tokens": words}])[0]
        enc = tok(words, is_split_into_words=True, truncation=True,
                  max_length=meta["max_length"], return_tensors="pt")
        with torch.no_grad():
            probs = softmax(model(**enc).logits[0].numpy(), meta.get("temperature", 1.0))
        previous, seen = None, 0
        for pos, word in enumerate(enc.word_ids(0)):
            if word is not None and word != previous:
                assert abs(pred["scores"][word] - probs[pos].max()) < 1e-4
                assert_same_choice(probs[pos], pred["tags"][word], labels, f"{words[word]}")
                seen += 1
            previous = word
        assert seen == len(words)


def check_multilabel(predictor, model, tok, meta):
    """The card's recipe: sigmoid of the logits, each label against its threshold."""
    import torch

    labels, thresholds = meta["labels"], meta["options"]["thresholds"]
    assert set(thresholds) == set(labels) and model.config.problem_type == \
        "multi_label_classification"
    for text, pred in zip(TEXT_PROBES, predictor.predict(TEXT_PROBES)):
        enc = tok(text, truncation=True, max_length=meta["max_length"], return_tensors="pt")
        probs = torch.sigmoid(text_logits(model, enc, meta)[0]).numpy()
        assert np.allclose([pred["probabilities"][n] for n in labels], probs, atol=PROB)
        chosen = [n for n, p in zip(labels, probs) if p >= thresholds[n]]
        near = any(abs(p - thresholds[n]) < TIE for n, p in zip(labels, probs))
        assert near or pred["labels"] == chosen, (pred, probs, thresholds)


def check_regression(predictor, model, tok, meta):
    """The export outputs the number itself (the target scale is folded into the head)."""

    assert model.config.problem_type == "regression" and model.config.num_labels == 1
    for text, pred in zip(TEXT_PROBES, predictor.predict(TEXT_PROBES)):
        enc = tok(text, truncation=True, max_length=meta["max_length"], return_tensors="pt")
        value = float(text_logits(model, enc, meta)[0, 0])
        assert abs(pred["value"] - value) < 1e-3 * max(1.0, abs(value)), (pred, value)


def check_qa(predictor, model, tok, meta):
    import torch

    from finetuner.tasks.qa_spans import N_BEST

    max_len = meta["max_length"]
    longest = meta["options"]["max_answer_length"]
    for question, context in QA_PROBES:
        pred = predictor.answer(question, context)
        enc = tok(question, context, truncation="only_second", max_length=max_len,
                  return_offsets_mapping=True, return_tensors="pt")
        offsets = enc.pop("offset_mapping")[0].tolist()
        inside = [i for i, s in enumerate(enc.sequence_ids(0)) if s == 1]
        assert inside and len(enc["input_ids"][0]) < max_len  # one window holds it all
        assert len(inside) <= N_BEST  # so that n-best decoding is exact here
        with torch.no_grad():
            out = model(**enc)
        start, end = out.start_logits[0].numpy(), out.end_logits[0].numpy()
        spans = sorted(((float(start[i] + end[j]), i, j) for i in inside for j in inside
                        if 0 <= j - i < longest), reverse=True)
        score, i, j = spans[0]
        if spans[1][0] > score - TIE:
            continue
        best = (offsets[i][0], offsets[j][1])
        assert (pred["start"], pred["end"]) == best, (pred, context[best[0]:best[1]])
        assert pred["answer"] == context[best[0]:best[1]]


def _cases() -> list[tuple[str, str, str]]:
    """Every family x task with full fine-tuning and an adapter-only LoRA export (the paths
    that differ most between architectures); merged LoRA and head-only for every family on
    one task each, rotating, so each task x method pair still meets several families. Keeps
    the file near a minute on 2 cores."""
    out = [(f, t, m) for f in FAMILIES for t in TASKS for m in ("full", "lora-adapter")]
    out += [(f, TASKS[(i + k) % len(TASKS)], m) for i, f in enumerate(FAMILIES)
            for k, m in enumerate(("lora", "head"))]
    return out


SENTENCE_TASKS = ("classification", "multi-label", "regression")


def _mean_cases() -> list[tuple[str, str, str]]:
    """Sentence-transformers bodies (mean pooling): every sentence-level task x method on a
    BERT body, and one task each on RoBERTa and DistilBERT (other names, no token types)."""
    out = [("bert+mean", t, m) for t in SENTENCE_TASKS for m in METHODS]
    return out + [("roberta+mean", "classification", "lora-adapter"),
                  ("distilbert+mean", "multi-label", "full"),
                  ("mpnet+mean", "classification", "lora"),  # all-mpnet-base-v2's shape
                  ("mpnet+mean", "regression", "head")]


@pytest.mark.parametrize(("family", "task", "method"), _cases() + _mean_cases())
def test_trains_exports_and_reloads_in_plain_transformers(family, task, method, tiny_family,
                                                          data_files, tmp_path):
    import transformers

    from finetuner.serving.export import read_meta
    from finetuner.serving.inference import Predictor

    folder = tiny_family(family)
    run, results = train_in_process(tmp_path, folder, data_files[task], task, method)
    assert results["status"] == "completed", results
    mean = family.endswith("+mean")
    # a linear head on a mean-pooled body is the probe's fit: head-only takes no step
    assert results["timing"]["steps"] == (0 if mean and method == "head" else 2)
    trainable = results["params"]["trainable"]
    if method == "full":
        assert trainable == results["params"]["total"]
    else:
        assert 0 < trainable < results["params"]["total"]
    meta = read_meta(run.model)
    assert meta.get("body_pooling") == ("mean" if mean else None)
    assert meta["format"] == ("peft-adapter" if method == "lora-adapter" else "transformers")
    if method == "lora-adapter":
        assert (run.model / "adapter_config.json").exists()
        assert not (run.model / "model.safetensors").exists()
    tok = transformers.AutoTokenizer.from_pretrained(run.model)
    assert type(tok).__name__ == TOKENIZER_CLASS[family.partition("+")[0]]
    model = plain_model(task, run.model, meta, folder)
    predictor = Predictor.load(run.root)
    if task == "classification":
        check_classification(predictor, model, tok, meta)
    elif task == "ner":
        check_ner(predictor, model, tok, meta, folder, family)
    elif task == "multi-label":
        check_multilabel(predictor, model, tok, meta)
    elif task == "regression":
        check_regression(predictor, model, tok, meta)
    else:
        check_qa(predictor, model, tok, meta)
    check_head_start(run, task, family, method, meta, tok, model)


def check_head_start(run, task, family, method, meta, tok, model):
    """Sentence-level heads start from a probe on frozen features, scored at step 0 before
    any step (so the kept model is never worse on validation than the probe); a mean-pooled
    export's card snippet, run as written, gives the logits we compared above."""
    import torch

    from finetuner.runs import read_events

    events = read_events(run.events)[0]
    starts = [e for e in events if e["type"] == "head_start"]
    evals = [e for e in events if e["type"] == "eval"]
    mean = family.endswith("+mean")
    # a random model's first-token head input barely varies between texts (heads.FLAT):
    # no probe there, the head starts as it is; mean-pooled token vectors do vary
    if task not in SENTENCE_TASKS or (not mean and not starts):
        assert not starts and evals[0]["step"] > 0
        return
    assert starts and starts[0]["pooling"] == ("mean" if mean else "first")
    # where the probe is the model (head-only on a mean-pooled body) a class or ridge head's
    # strength also reads a cross-check of the training rows; a start for fine-tuning, a
    # first-token head, or thresholded labels, not
    assert (starts[0]["cross_rows"] > 0) == (method == "head" and mean
                                             and task != "multi-label")
    assert evals[0]["step"] == 0
    assert abs(evals[0]["validation"][starts[0]["metric"]] - starts[0]["validation"]) < 0.002
    if family.endswith("+mean") and method != "lora-adapter":
        recipe = card_recipe(run.model)
        enc = tok(TEXT_PROBES[0], truncation=True, max_length=meta["max_length"],
                  return_tensors="pt")
        assert torch.allclose(card_logits(recipe, enc), text_logits(model, enc, meta),
                              atol=1e-5)


# ---------------------------------------------------------------------------- the pieces


def _labels(task: str) -> list[str]:
    return {"classification": ["neg", "pos"], "ner": ["O", "B-LOC", "I-LOC"], "qa": [],
            "multi-label": ["food", "travel", "weather"], "regression": ["score"]}[task]


@pytest.mark.parametrize("method", ("lora", "head"))
@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("family", FAMILIES)
def test_every_newly_initialised_weight_trains(family, task, method, tiny_family):
    """The task head (whatever the family names it: classifier, pooler, pre_classifier,
    qa_outputs, ModernBERT's head + classifier) starts random: head-only and LoRA train it,
    and LoRA saves it whole (an adapter without it reloads a different random head)."""
    import transformers

    from finetuner.config import MethodConfig
    from finetuner.models.modeling import build_model, resolve_model
    from finetuner.tasks import get_task

    spec, labels = get_task(task), _labels(task)
    folder = tiny_family(family)
    kwargs = {"num_labels": len(labels)} if labels else {}
    _, info = getattr(transformers, spec.auto_model).from_pretrained(
        folder, output_loading_info=True, **kwargs)
    new = set(info["missing_keys"])
    assert new, "the base folder holds no task head"
    model, _ = build_model(spec, resolve_model(str(folder)), labels,
                           MethodConfig(method=method, lora_r=4))
    trainable = {n.replace("base_model.model.", "").replace(".modules_to_save.default", "")
                 for n, p in model.named_parameters() if p.requires_grad}
    assert new <= trainable, sorted(new - trainable)
    if method == "lora":  # adapters on the encoder, none inside the head saved whole
        config = model.peft_config["default"]
        assert config.target_modules and config.modules_to_save
        wrapped = [n for n, _ in model.named_modules() if n.endswith("lora_A")]
        assert wrapped and not any(".modules_to_save." in n or ".original_module." in n
                                   for n in wrapped), wrapped


@pytest.mark.parametrize("family", BYTE_LEVEL)
def test_split_words_get_the_prefix_space_of_running_text(family, tiny_family, tmp_path):
    """Byte-level BPE reads the space before a word; NER feeds words already split, which
    without add_prefix_space encode as if each began the text (transformers 5 says nothing)."""
    import torch
    import transformers

    from finetuner.models.modeling import load_tokenizer, resolve_model
    from finetuner.serving.inference import Predictor

    source = resolve_model(str(tiny_family(family)))
    words = NER_PROBES[0]

    def encodings(tok):
        return (tok(words, is_split_into_words=True)["input_ids"],
                tok(" ".join(words))["input_ids"])

    as_text = load_tokenizer(source)  # classification and QA read running text: untouched
    split, joined = encodings(as_text)
    assert split != joined and not as_text.add_prefix_space
    fixed = load_tokenizer(source, split_words=True)
    split, joined = encodings(fixed)
    assert split == joined and fixed.add_prefix_space
    assert split[1:-1] == as_text(" " + " ".join(words), add_special_tokens=False)["input_ids"]
    fixed.save_pretrained(tmp_path / "saved")
    again = transformers.AutoTokenizer.from_pretrained(tmp_path / "saved")
    assert encodings(again) == (split, split)
    # an export made before the fix (tokenizer saved without the flag): Predictor fixes it
    old = tmp_path / "old-export"
    torch.manual_seed(0)
    transformers.AutoModelForTokenClassification.from_pretrained(
        source.path, num_labels=3).save_pretrained(old)
    as_text.save_pretrained(old)
    (old / "finetuner.json").write_text(json.dumps(
        {"task": "ner", "labels": _labels("ner"), "format": "transformers", "max_length": 32}))
    predictor = Predictor.load(old)
    assert encodings(predictor.tokenizer) == (split, split)
    assert predictor.predict(" ".join(words))["tokens"] == words


# ---------------------------------------------------------------------------- cheap counts


@pytest.mark.parametrize("task", ("classification", "ner", "qa", "multi-label"))
@pytest.mark.parametrize("family", FAMILIES)
def test_header_counts_match_the_models_peft_builds(family, task, tiny_family):
    """The method table's parameter counts, read from the safetensors header and
    config.json, are exactly those of the skeletons transformers and peft build; families
    the header rules do not know fall back to the skeletons."""
    from finetuner.models.estimate import method_params, quick_params
    from finetuner.tasks import get_task

    spec = get_task(task)
    folder = str(tiny_family(family))
    for labels, r in ((2, 8), (2 if task == "qa" else 5, 4)):  # QA: start and end
        quick = quick_params(folder, spec.auto_model, labels, r)
        built = method_params(folder, spec.auto_model, spec.peft_task_type, spec.head_modules,
                              labels, r)
        # DistilBERT and ModernBERT: other layouts; this ELECTRA projects its embeddings
        if family in ("distilbert", "modernbert", "electra"):
            assert quick is None
        else:
            assert quick == built, (family, task, labels, r)


def test_the_default_models_table_needs_no_model_classes():
    """The first method table on a fresh server: counts of the embedded model without
    importing transformers' modeling code (it took 3-4 s on this CPU)."""
    import subprocess
    import sys

    code = ("import sys, time; t = time.perf_counter()\n"
            "from finetuner.models.estimate import counts\n"
            "from finetuner.models.modeling import embedded_model_path\n"
            "from finetuner.tasks import get_task\n"
            "c = counts(embedded_model_path(), get_task('classification'), 2)\n"
            "print(c['full'][1], c['lora'][0], c['head'][0], "
            "'transformers.modeling_utils' in sys.modules, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, cwd=Path(__file__).parent.parent)
    assert out.returncode == 0, out.stderr
    # a sentence-transformers body: a linear head on its mean-pooled vector (no pooler)
    assert out.stdout.split() == ["22566146", "74498", "770", "False", "False"]


def test_odd_weight_files_fall_back_to_the_skeletons(tiny_family, tmp_path):
    """A truncated file, a header that is not a table, a giant header size or a stray shard:
    the header path gives up (None) and the method table still counts, from the skeletons."""
    import shutil
    import struct

    from finetuner.models.estimate import counts, method_params, quick_params
    from finetuner.tasks import get_task

    spec = get_task("classification")
    folder = tmp_path / "odd"
    shutil.copytree(tiny_family("bert"), folder)
    weights = folder / "model.safetensors"
    good = quick_params(str(folder), spec.auto_model, 2)
    assert good is not None
    for body in (b"abc", struct.pack("<Q", 2) + b"[]", struct.pack("<Q", 1 << 40) + b"{}"):
        weights.write_bytes(body)
        assert quick_params(str(folder), spec.auto_model, 2) is None
        assert counts(str(folder), spec, 2) == method_params(
            str(folder), spec.auto_model, spec.peft_task_type, spec.head_modules, 2) == good
