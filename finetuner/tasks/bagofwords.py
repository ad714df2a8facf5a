"""The bag-of-words pieces that the tasks' baselines share: TF-IDF features of a split's texts
and the regularisation grid chosen on validation. scikit-learn only, imported when called."""

from __future__ import annotations

C_GRID = (0.1, 1.0, 10.0)  # regularisation strengths tried, chosen on validation, never test
MAX_FEATURES = 200_000


def texts(examples: list[dict]) -> list[str]:
    """A row's text, its second text after a separator when it has one."""
    return [e["text"] + (" [SEP] " + e["pair"] if e.get("pair") else "") for e in examples]


def tfidf(train: list[dict], validation: list[dict], test: list[dict]):
    """Word 1-2 gram TF-IDF matrices of the three splits, the vocabulary fitted on train."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1,
                                 max_features=MAX_FEATURES)
    x_train = vectorizer.fit_transform(texts(train))
    return x_train, vectorizer.transform(texts(validation)), vectorizer.transform(texts(test))
