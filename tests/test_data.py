"""Reading files, detecting columns, validating, splitting and reporting (no model needed)."""

from __future__ import annotations

import json
import time
from collections import Counter

import pandas as pd
import pytest
from conftest import EXAMPLES, sentiment_rows, write_csv, write_jsonl

from finetuner.config import DataConfig, RunConfig
from finetuner.data.splits import split_indices
from finetuner.data.tables import read_table
from finetuner.errors import DataError
from finetuner.tasks.classification import detect_columns, prepare


def config_for(path, **data) -> RunConfig:
    return RunConfig(data=DataConfig(train_file=str(path), **data))


def error_of(path, **data) -> DataError:
    with pytest.raises(DataError) as info:
        prepare(config_for(path, **data))
    return info.value


# ---------------------------------------------------------------- formats


@pytest.mark.parametrize("fmt", ["csv", "tsv", "json", "jsonl", "parquet"])
def test_every_format_reads_the_same_rows(tmp_path, fmt):
    rows = sentiment_rows(60)
    path = tmp_path / f"data.{fmt}"
    if fmt == "csv":
        write_csv(path, rows)
    elif fmt == "tsv":
        write_csv(path, rows, delimiter="\t")
    elif fmt == "json":
        path.write_text(json.dumps(rows), encoding="utf-8")
    elif fmt == "jsonl":
        write_jsonl(path, rows)
    else:
        pd.DataFrame(rows).to_parquet(path)
    prepared = prepare(config_for(path))
    total = sum(prepared.report.rows.values())
    assert total == 60
    assert prepared.labels == ["neg", "pos"]
    assert prepared.report.columns == {"text": "text", "text_pair": None, "label": "label"}


def test_utf8_bom_and_semicolons_are_handled(tmp_path):
    path = tmp_path / "semi.csv"
    body = "review;stars\n" + "".join(
        f"nice café number {i};{'good' if i % 2 else 'bad'}\n" for i in range(40))
    path.write_bytes(b"\xef\xbb\xbf" + body.encode("utf-8"))
    table = read_table(path)
    assert list(table.frame.columns) == ["review", "stars"]
    assert "café" in table.frame.iloc[0, 0]
    assert not table.findings


def test_cp1252_falls_back_with_a_warning(tmp_path):
    path = tmp_path / "legacy.csv"
    rows = (f"caf\u00e9 {i} \u201cquoted\u201d,{i % 2}\n" for i in range(30))
    body = "text,label\n" + "".join(rows)
    path.write_bytes(body.encode("cp1252"))
    table = read_table(path)
    assert "café" in table.frame.iloc[0, 0] and "“quoted”" in table.frame.iloc[0, 0]
    assert table.findings[0].code == "encoding"
    assert "cp1252" in table.findings[0].message and "line 2" in table.findings[0].message


def test_numeric_labels_keep_their_names(tmp_path):
    path = write_csv(tmp_path / "n.csv", [{"sentence": f"s {i}", "label": i % 3 + 1}
                                          for i in range(60)])
    prepared = prepare(config_for(path))
    assert prepared.labels == ["1", "2", "3"]


def test_example_files_all_load():
    for name in ("sentiment.csv", "spam.jsonl", "topics.tsv", "pairs.csv"):
        prepared = prepare(config_for(EXAMPLES / name))
        assert len(prepared.labels) >= 2, name
    pairs = prepare(config_for(EXAMPLES / "pairs.csv"))
    assert pairs.report.columns == {"text": "premise", "text_pair": "hypothesis",
                                    "label": "label"}
    assert "pair" in pairs.train[0]


# ---------------------------------------------------------------- detection


def test_detects_unnamed_label_and_text_columns():
    frame = pd.DataFrame({
        "id": [str(i) for i in range(50)],
        "body_of_message": [f"a fairly long message number {i} about things" for i in range(50)],
        "kind": ["x" if i % 2 else "y" for i in range(50)],
    })
    columns, _ = detect_columns(frame)
    assert columns == {"text": "body_of_message", "text_pair": None, "label": "kind"}


def test_overrides_win_over_detection(tmp_path):
    rows = [{"text": f"t{i}", "other": f"other text {i}", "label": "a" if i % 2 else "b",
             "alt": "c" if i % 3 else "d"} for i in range(60)]
    path = write_csv(tmp_path / "o.csv", rows)
    prepared = prepare(config_for(path, text_column="other", label_column="alt"))
    assert prepared.report.columns["text"] == "other"
    assert prepared.labels == ["c", "d"]


# ---------------------------------------------------------------- bad input


def test_empty_file(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    err = error_of(path)
    assert err.code == "empty" and "empty" in str(err)


def test_header_only(tmp_path):
    path = tmp_path / "header.csv"
    path.write_text("text,label\n")
    err = error_of(path)
    assert err.code == "no_rows" and "no data rows" in str(err)


def test_binary_file_renamed_csv(tmp_path):
    path = tmp_path / "photo.csv"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 20)
    err = error_of(path)
    assert err.code == "binary" and "not a text file" in str(err)


def test_excel_renamed_csv_is_named(tmp_path):
    path = tmp_path / "book.csv"
    path.write_bytes(b"PK\x03\x04" + b"\x00" * 200)
    assert "Excel" in str(error_of(path))


def test_unknown_extension(tmp_path):
    path = tmp_path / "data.xlsx"
    path.write_text("text,label\na,b\n")
    err = error_of(path)
    assert err.code == "unknown_extension" and ".csv" in str(err)


def test_malformed_json(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('[{"text": "a", "label": "x"}, {"text": "b" "label": "y"}]')
    err = error_of(path)
    assert err.code == "bad_json" and "line 1" in str(err)


def test_malformed_jsonl_names_the_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "a", "label": "x"}\n{"text": "b", "label": \n')
    err = error_of(path)
    assert "Line 2" in str(err)


def test_ragged_csv_names_the_line(tmp_path):
    path = tmp_path / "ragged.csv"
    lines = ["text,label"] + [f"row {i},pos" for i in range(10)] + ["good, really good,pos"]
    path.write_text("\n".join(lines) + "\n")
    err = error_of(path)
    assert err.code == "ragged_rows"
    assert "Line 12" in str(err) and "3 fields" in str(err) and "quoted" in str(err)


def test_named_column_missing_lists_the_columns(sentiment_csv):
    err = error_of(sentiment_csv, label_column="sentiment")
    assert err.code == "missing_column"
    assert "'sentiment'" in str(err) and "text, label" in str(err)


def test_one_class_only(tmp_path):
    path = write_csv(tmp_path / "one.csv", [{"text": f"t {i}", "label": "pos"}
                                            for i in range(30)])
    err = error_of(path)
    assert err.code == "one_class" and "'pos'" in str(err)


def test_class_with_a_single_example(tmp_path):
    rows = sentiment_rows(40) + [{"text": "a lone example", "label": "postive"}]
    path = write_csv(tmp_path / "single.csv", rows)
    err = error_of(path)
    assert err.code == "single_example"
    assert "'postive'" in str(err) and "(row 42)" in str(err)


def test_labels_unseen_in_training(tmp_path):
    train = write_csv(tmp_path / "train.csv", sentiment_rows(40))
    test = write_csv(tmp_path / "test.csv", sentiment_rows(10, seed=1)
                     + [{"text": "so-so", "label": "neutral"}])
    err = error_of(train, test_file=str(test))
    assert err.code == "unseen_label"
    assert "'neutral'" in str(err) and "test" in str(err)


def test_all_texts_empty(tmp_path):
    path = write_csv(tmp_path / "blank.csv", [{"text": "", "label": "a" if i % 2 else "b"}
                                              for i in range(20)])
    err = error_of(path, text_column="text")
    assert err.code == "all_texts_empty"


def test_non_utf8_bytes_that_no_codepage_maps_still_read(tmp_path):
    path = tmp_path / "odd.csv"
    body = b"text,label\n" + b"".join(b"odd \x81\x8d byte %d,%d\n" % (i, i % 2) for i in range(30))
    path.write_bytes(body)
    prepared = prepare(config_for(path))
    assert any(f.code == "encoding" and "latin-1" in f.message
               for f in prepared.report.findings)


def test_huge_single_cell_is_clipped_with_a_warning(tmp_path):
    rows = sentiment_rows(40)
    rows[3]["text"] = "word " * 60_000
    path = write_csv(tmp_path / "huge.csv", rows)
    prepared = prepare(config_for(path))
    found = [f for f in prepared.report.findings if f.code == "huge_cell"]
    assert found and "row" in found[0].message
    assert max(len(e["text"]) for e in prepared.train + prepared.validation
               + prepared.test) <= 100_000


def test_empty_rows_are_dropped_and_counted(tmp_path):
    rows = sentiment_rows(40) + [{"text": "", "label": "pos"}, {"text": "x y", "label": ""},
                                 {"text": " ", "label": "neg"}]
    path = write_csv(tmp_path / "gaps.csv", rows)
    report = prepare(config_for(path)).report
    assert report.dropped == {"empty text": 2, "empty label": 1}
    assert sum(report.rows.values()) == 40
    assert any("Dropped 3 rows" in f.message for f in report.findings)


# ---------------------------------------------------------------- splits and report


def test_split_is_stratified_seeded_and_disjoint(tmp_path):
    rows = [{"text": f"text {i}", "label": "a" if i < 150 else "b"} for i in range(200)]
    path = write_csv(tmp_path / "s.csv", rows)
    first = prepare(config_for(path))
    again = prepare(config_for(path))
    assert [e["row"] for e in first.test] == [e["row"] for e in again.test]
    assert first.report.rows == {"train": 160, "validation": 20, "test": 20}
    assert first.report.label_counts["test"] == {"a": 15, "b": 5}
    sets = [{e["row"] for e in part} for part in (first.train, first.validation, first.test)]
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    other_seed = prepare(RunConfig.from_dict({
        "data": {"train_file": str(path)}, "training": {"seed": 7}}))
    assert [e["row"] for e in other_seed.test] != [e["row"] for e in first.test]


def test_identical_texts_never_straddle_splits(tmp_path):
    rows = [{"text": f"text {i % 40}", "label": "a" if i % 40 < 20 else "b"} for i in range(200)]
    path = write_csv(tmp_path / "dups.csv", rows)
    prepared = prepare(config_for(path))
    train = {e["text"] for e in prepared.train}
    assert not train & {e["text"] for e in prepared.validation + prepared.test}
    assert prepared.report.extra["leakage"] == {"validation": 0, "test": 0}
    assert any(f.code == "duplicates" for f in prepared.report.findings)


def test_report_flags_imbalance_rare_classes_and_leakage(tmp_path):
    rows = [{"text": f"common {i}", "label": "ham"} for i in range(100)]
    rows += [{"text": f"rare {i}", "label": "spam"} for i in range(8)]
    train = write_csv(tmp_path / "train.csv", rows)
    val = write_csv(tmp_path / "val.csv", rows[:5] + rows[100:102])
    test = write_csv(tmp_path / "test.csv", [{"text": "fresh 1", "label": "ham"},
                                             {"text": "fresh 2", "label": "spam"}])
    report = prepare(config_for(train, validation_file=str(val), test_file=str(test))).report
    codes = Counter(f.code for f in report.findings)
    assert codes["imbalance"] == 1 and codes["rare_classes"] == 1 and codes["leakage"] == 1
    leak = next(f for f in report.findings if f.code == "leakage")
    assert leak.message.startswith("7 validation rows also appear")
    assert report.rows == {"train": 108, "validation": 7, "test": 2}


def test_token_lengths_and_truncation_share(tmp_path):
    rows = sentiment_rows(40)
    for row in rows[:10]:
        row["text"] = " ".join(["word"] * 50)
    path = write_csv(tmp_path / "long.csv", rows)

    def count(texts, pairs):
        return [len(t.split()) + 2 for t in texts]

    prepared = prepare(config_for(path, max_length=16, long_documents="truncate"),
                       count_tokens=count)
    stats = prepared.report.token_lengths
    assert stats["truncated"] == 10 and stats["truncated_share"] == 0.25
    assert stats["max"] == 52 and stats["p50"] == 8
    assert any(f.code == "truncation" and f.level == "warning" for f in prepared.report.findings)
    assert "windows" not in (prepared.report.extra.get("options") or {})
    # 'auto' reads such data in windows, and says how much a plain cut would have dropped
    auto = prepare(config_for(path, max_length=16), count_tokens=count).report
    assert auto.extra["options"] == {"windows": True, "window_overlap": 4, "max_windows": 16,
                                     "pooling": "mean"}
    note = next(f for f in auto.findings if f.code == "windows")
    dropped = 10 * (52 - 16) / (10 * 52 + 30 * 8)
    assert f"would drop {dropped:.1%} of all the text" in note.message
    assert auto.token_lengths["dropped_token_share"] == round(dropped, 4)
    assert not any(f.code == "truncation" for f in auto.findings)


def test_grouped_split_keeps_groups_together():
    groups = [f"doc{i // 5}" for i in range(100)]
    train, val, test = split_indices(100, (0.1, 0.1), 3, groups=groups)
    assert len(train) + len(val) + len(test) == 100
    for part in (val, test):
        for i in part:
            assert groups[i] not in {groups[j] for j in train}


def test_two_columns_of_one_name_are_refused_with_the_name(tmp_path):
    from finetuner.errors import DataError
    path = tmp_path / "dup.csv"
    path.write_text("text,text,label\nfine film,great cast,pos\nbad film,dull cast,neg\n")
    with pytest.raises(DataError, match="two or more columns named 'text'"):
        read_table(path)


def test_csv_cells_a_spreadsheet_would_run_are_written_as_text(tmp_path):
    from finetuner.csvsafe import SafeWriter, safe_cell

    for cell in ("=1+1", "+A1", "-A1", "@SUM(A1)", "\tx", "\rx", '=HYPERLINK("u","c")',
                 "  =1+1", "\uff1d1+1", "-\u0663"):
        assert safe_cell(cell) == "'" + cell
    for cell in ("-3.5", "+1e3", "-7", ".5", 3, -2.5, None, "plain", "a=b", ""):
        assert safe_cell(cell) == cell
    path = tmp_path / "out.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        SafeWriter(fh).writerow(["=h", "-1", -1, "ok"])
    assert path.read_text(encoding="utf-8").strip() == "'=h,-1,-1,ok"


# ------------------------------------------------------------------ bombs: bounded readers


def parquet_bomb(path, rows=5_000_000):
    """A few kilobytes on disk: one dictionary-encoded value repeated `rows` times."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    column = pa.DictionaryArray.from_arrays(pa.array([0] * rows, type=pa.int8()),
                                            pa.array(["same"]))
    pq.write_table(pa.table({"text": column, "label": column}), path, compression="zstd")
    return path


def wide_csv(path, columns=100_000):
    path.write_text(",".join(f"c{i}" for i in range(columns)) + "\n" +
                    ",".join("x" for _ in range(columns)) + "\n")
    return path


def deep_json(path, depth=100_000):
    path.write_text('[{"text": ' + "[" * depth + "]" * depth + ', "label": "a"}]')
    return path


def test_bombs_are_refused_by_bounded_readers_fast(tmp_path):
    import resource

    bomb = parquet_bomb(tmp_path / "bomb.parquet")
    assert bomb.stat().st_size < 100_000
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cases = [(bomb, "5,000,000 rows; this server reads at most 2,000,000 rows per file "
                    "(FINETUNER_MAX_ROWS)"),
             (wide_csv(tmp_path / "wide.csv"), "100,000 columns; this server reads at most "
                                               "1,000 (FINETUNER_MAX_COLUMNS)"),
             (deep_json(tmp_path / "deep.json"), "nested too deeply"),
             (deep_json(tmp_path / "deep.jsonl"), "nested too deeply")]
    for path, message in cases:
        started = time.perf_counter()
        with pytest.raises(DataError) as caught:
            read_table(path)
        assert message in caught.value.text, caught.value.text
        assert time.perf_counter() - started < 3, path
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 200, grown_mb


def test_row_and_column_caps_stop_every_reader(tmp_path, monkeypatch):
    monkeypatch.setenv("FINETUNER_MAX_ROWS", "50")
    monkeypatch.setenv("FINETUNER_MAX_COLUMNS", "5")
    rows = [{"text": f"t{i}", "label": "a"} for i in range(51)]
    write_csv(tmp_path / "a.csv", rows)
    (tmp_path / "a.json").write_text(json.dumps(rows))
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    (tmp_path / "wrapped.json").write_text(json.dumps({"data": rows}))
    pd.DataFrame(rows).to_parquet(tmp_path / "a.parquet")
    for name in ("a.csv", "a.json", "a.jsonl", "wrapped.json", "a.parquet"):
        with pytest.raises(DataError, match=r"this server reads at most 50 rows per file "
                                            r"\(FINETUNER_MAX_ROWS\)"):
            read_table(tmp_path / name)
    assert len(read_table(write_csv(tmp_path / "ok.csv", rows[:50])).frame) == 50
    (tmp_path / "lists.json").write_text("[[1, 2], [3]]")
    with pytest.raises(DataError, match="Record 1 of 'lists.json' is not an object"):
        read_table(tmp_path / "lists.json")
    # records whose keys differ make columns too
    (tmp_path / "keys.json").write_text(json.dumps([{f"k{i}": 1} for i in range(6)]))
    with pytest.raises(DataError, match="6 columns; this server reads at most 5"):
        read_table(tmp_path / "keys.json")
    # a repeated header is still named, found in one pass
    (tmp_path / "dup.csv").write_text("text,label,text\na,b,c\n")
    with pytest.raises(DataError, match="two or more columns named 'text'"):
        read_table(tmp_path / "dup.csv")


def test_json_arrays_read_record_by_record_keep_their_errors(tmp_path):
    (tmp_path / "ok.json").write_text(' [ {"text": "a", "label": "x"} ,\n{"text": "b", '
                                      '"label": "y"} ] \n')
    assert read_table(tmp_path / "ok.json").frame["text"].tolist() == ["a", "b"]
    for body, where in (('[{"text": "a"},\n {"text": }]', "line 2"),
                        ('[{"text": "a"} {"text": "b"}]', "line 1"),
                        ('[{"text": "a"}] x', "line 1")):
        (tmp_path / "bad.json").write_text(body)
        with pytest.raises(DataError, match=f"is not valid JSON.*{where}"):
            read_table(tmp_path / "bad.json")
    (tmp_path / "odd.parquet").write_bytes(b"PAR1" + b"\x00" * 64 + b"PAR1")
    with pytest.raises(DataError, match="could not be read as Parquet"):
        read_table(tmp_path / "odd.parquet")


def test_a_wide_header_over_short_rows_is_refused_by_its_cells(tmp_path):
    """1,000 columns over 30,000 one-field rows is 100 KB on disk and 30 million cells once
    pandas fills the missing fields: refused by the cell budget, fast."""
    from finetuner.data.tables import read_table

    wide = tmp_path / "wide.csv"
    wide.write_text(",".join(f"c{i}" for i in range(1000)) + "\n" + "a\n" * 30_000)
    started = time.perf_counter()
    with pytest.raises(DataError, match="more than 20,000 rows of 1,000 columns: more cells "
                                        "than the 20,000,000"):
        read_table(wide)
    assert time.perf_counter() - started < 10
    records = [{f"k{i}": 1 for i in range(1000)}] + [{"k0": 1}] * 30_000
    (tmp_path / "wide.json").write_text(json.dumps(records))
    with pytest.raises(DataError, match="rows of 1,000 columns: more cells than the 20,000,000"):
        read_table(tmp_path / "wide.json")
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({f"c{i}": pa.nulls(30_000) for i in range(1000)}),
                   tmp_path / "wide.parquet")
    with pytest.raises(DataError, match="rows of 1,000 columns: more cells than the 20,000,000"):
        read_table(tmp_path / "wide.parquet")
