"""Writes the small example data sets in this folder (all sentences written for this project).

    python examples/make_examples.py

sentiment.csv   product and film reviews, positive / negative (single text)
spam.jsonl      short messages, ham / spam, imbalanced on purpose
topics.tsv      news-style headlines in four topics
pairs.csv       premise / hypothesis pairs: entailment / contradiction
ner.conll       news-style sentences tagged with PER / ORG / LOC / MISC (CoNLL, BIO tags)
ner.jsonl       more such sentences as {"tokens": [...], "tags": [...]} records
clauses.csv     contract clauses with any number of categories, none included (multi-label)
ratings.csv     product reviews with a 0-10 score (regression)
"""

import csv
import json
import random
from pathlib import Path

HERE = Path(__file__).parent
rng = random.Random(7)

SUBJECTS = ["The film", "This movie", "The sequel", "The documentary", "This blender",
            "The headphones", "This laptop", "The hotel", "Our stay", "The restaurant",
            "The service", "The new phone", "This novel", "The concert", "The game",
            "This coffee maker", "The tour", "The app", "The camera", "The vacuum cleaner"]
POSITIVE = ["was an absolute delight from start to finish", "exceeded every expectation I had",
            "is worth every penny", "made me smile all evening", "works beautifully",
            "is clever, warm and surprisingly moving", "felt fresh and well made",
            "was fantastic and I would happily recommend it", "is the best I have tried",
            "delivered more than it promised", "was charming and easy to love",
            "is reliable, quiet and fast", "left a lasting, happy impression",
            "was a pleasure to use every single day", "had wonderful attention to detail",
            "is brilliant, I loved it", "was friendly, quick and generous",
            "kept me gripped the whole time", "is excellent value", "sounds crisp and rich"]
NEGATIVE = ["was a complete waste of time", "broke after two days", "is badly overpriced",
            "bored me to tears", "stopped working within a week",
            "is clumsy, dull and far too long", "felt cheap and poorly made",
            "was terrible and I would not recommend it", "is the worst I have tried",
            "failed to deliver what it promised", "was rude, slow and careless",
            "is noisy, unreliable and slow", "left a bitter, disappointing taste",
            "was frustrating to use every single day", "ignored even the basic details",
            "is awful, I regret buying it", "was dirty and smelled of smoke",
            "lost my interest after ten minutes", "is poor value", "sounds muddy and thin"]
ENDINGS = ["", " Honestly.", " Five stars from me.", " One star.", " My family agreed.",
           " I said so to the staff.", " Would I go again? We will see.", ""]


def sentiment_rows(n: int) -> list[dict]:
    rows, seen = [], set()
    while len(rows) < n:
        label = rng.choice(["positive", "negative"])
        clause = rng.choice(POSITIVE if label == "positive" else NEGATIVE)
        ending = rng.choice([e for e in ENDINGS if ("One star" not in e or label == "negative")
                             and ("Five stars" not in e or label == "positive")])
        text = f"{rng.choice(SUBJECTS)} {clause}.{ending}"
        if text not in seen:
            seen.add(text)
            rows.append({"text": text, "label": label})
    return rows


HAM = ["Are we still on for lunch at {t}?", "Can you send me the slides before {t}?",
       "Running late, be there by {t}.", "Mum says dinner is at {t}.",
       "The meeting moved to {t}, same room.", "Thanks for the book, I finished it already!",
       "Did you feed the cat this morning?", "Happy birthday! Party is at {t} at our place.",
       "I left the keys under the mat.", "Can you pick up milk on the way home?",
       "Great game yesterday, same time next week?", "Your parcel arrived, it is at my desk.",
       "Call me when you land.", "The plumber comes at {t} tomorrow.",
       "Let's take the early train at {t}."]
SPAM = ["WINNER! You have won a {p} prize. Call now to claim before {t}!",
        "URGENT: your account is locked. Verify at secure-bank-login now.",
        "Free {p} voucher waiting for you. Reply YES to claim.",
        "Congratulations, you were selected for a cash reward of {p}. Text CLAIM.",
        "Lowest loan rates guaranteed! Apply today, no credit check.",
        "You have 1 unclaimed {p} gift card. Click the link to redeem."]


def spam_rows(n_ham: int, n_spam: int) -> list[dict]:
    times = ["9am", "10:30", "noon", "1pm", "3pm", "6pm", "7:45", "8pm", "11am", "2pm", "4:15",
             "5pm", "7pm", "9:30", "half past six", "quarter to five"]
    prizes = ["$500", "£1000", "iPhone", "holiday", "$250", "car"]
    rows = []
    for label, templates, n in (("ham", HAM, n_ham), ("spam", SPAM, n_spam)):
        seen = set()
        while len(seen) < n:
            text = rng.choice(templates).format(t=rng.choice(times), p=rng.choice(prizes))
            text = rng.choice(["", "Hi! ", "Hey, ", "Note: ", "PS ", "OK so "]) + text
            if text not in seen:
                seen.add(text)
                rows.append({"message": text, "label": label})
    rng.shuffle(rows)
    return rows


TOPICS = {
    "sport": ["{c} striker scores twice as {c2} lose the derby",
              "{c} coach resigns after a run of six defeats",
              "Record crowd watches {c} win the cup final",
              "Injury rules {c} captain out of the season opener"],
    "business": ["{c} shares jump after profits beat forecasts",
                 "Central bank in {c} holds interest rates steady",
                 "{c} retailer cuts 300 jobs as sales slow",
                 "Merger talks between {c} and {c2} carmakers stall"],
    "science": ["Researchers in {c} map a new gene linked to sleep",
                "Telescope team in {c} spots water on a distant planet",
                "{c} lab builds a battery that charges in minutes",
                "Fossil found in {c} rewrites the story of early birds"],
    "politics": ["{c} parliament passes the new budget by one vote",
                 "Prime minister of {c} calls an early election",
                 "Talks between {c} and {c2} end without a deal",
                 "Opposition in {c} demands an inquiry into spending"],
}
PLACES = ["Norway", "Chile", "Kenya", "Japan", "Canada", "Peru", "Spain", "India", "Ghana",
          "Poland", "Vietnam", "Ireland", "Brazil", "Egypt", "Finland"]


def topic_rows(per_topic: int) -> list[dict]:
    rows = []
    for topic, templates in TOPICS.items():
        seen = set()
        while len(seen) < per_topic:
            a, b = rng.sample(PLACES, 2)
            seen.add(rng.choice(templates).format(c=a, c2=b))
        rows += [{"headline": h, "topic": topic} for h in sorted(seen)]
    rng.shuffle(rows)
    return rows


PEOPLE = ["Ana", "Ben", "Chen", "Dara", "Eli", "Femi", "Gus", "Hana", "Ivo", "Jun"]
ACTS = [("is cooking pasta in the kitchen", "is making food", "is asleep upstairs"),
        ("rode a bike to work", "travelled to work", "walked to work"),
        ("is reading a long novel", "is reading", "has never opened a book"),
        ("won the chess tournament", "played chess", "lost every chess game"),
        ("is swimming in the lake", "is in the water", "is sitting in an office"),
        ("painted the fence green", "painted something", "left the fence unpainted"),
        ("bought three apples", "bought fruit", "bought nothing at all"),
        ("is singing on stage", "is performing", "is silent at home")]


def pair_rows() -> list[dict]:
    rows = []
    for person in PEOPLE:
        for premise, entailed, contradicted in ACTS:
            rows.append({"premise": f"{person} {premise}.", "hypothesis": f"{person} {entailed}.",
                         "label": "entailment"})
            rows.append({"premise": f"{person} {premise}.",
                         "hypothesis": f"{person} {contradicted}.", "label": "contradiction"})
    rng.shuffle(rows)
    return rows


def write_csv(path: Path, rows: list[dict], delimiter: str = ",") -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)


# Named entities. {X} slots are filled from the lists below; every name is made up or common.
NER_PEOPLE = ["Maria Lindqvist", "Tomas Okafor", "Priya Raman", "Jonas Weber", "Elena Petrova",
              "Samuel Mensah", "Lucia Ferraro", "Kenji Sato", "Amara Diallo", "Oliver Grant",
              "Ingrid Halvorsen", "Diego Alvarez", "Hannah Cole", "Yusuf Demir", "Clara Moreau",
              "Rafael Costa", "Mei Lin", "Peter Novak", "Fatima Haddad", "Arjun Mehta", "Nadia",
              "Lukas", "Sofia Rossi", "Daniel Brooks", "Anna Kowalska", "Marek Dvorak"]
NER_ORGS = ["Northwind Energy", "Baltic Shipping Company", "Red Valley Rovers", "Helios Bank",
            "the United Nations", "Atlas Motors", "Greenfield University", "Orion Telecom",
            "Silver Harbour FC", "Kestrel Airlines", "the World Health Organization", "Nordmark",
            "Pioneer Foods", "Vantage Capital", "City Rangers", "Meridian Press", "Solaris",
            "the European Commission", "Blue Ridge Mining", "Crescent Pharma"]
NER_PLACES = ["Paris", "Nairobi", "Oslo", "Buenos Aires", "Tokyo", "Lisbon", "Cairo", "Toronto",
              "Berlin", "New Delhi", "Hamburg", "Lima", "Warsaw", "Hanoi", "Dublin", "Accra",
              "Sao Paulo", "Helsinki", "Istanbul", "New York", "Kenya", "Brazil", "Norway",
              "Japan", "Canada", "Spain", "the Rhine", "Lake Victoria"]
NER_MISC = ["German", "French", "Brazilian", "Japanese", "Kenyan", "Canadian", "Norwegian",
            "Spanish", "Polish", "Turkish", "Indian", "Irish"]
NER_EVENTS = ["World Cup", "Tour de France", "Olympic Games", "Nobel Prize", "Champions League",
              "Golden Globe", "Davis Cup", "Berlin Marathon"]
NER_TEMPLATES = [
    "{PER} , the chief executive of {ORG} , said on Monday that profits rose in {LOC} .",
    "{PER} scored twice as {ORG} beat {ORG} 3-1 in {LOC} .",
    "The {MISC} government said it would send aid to {LOC} .",
    "{PER} won the {EVENT} for the second time .",
    "{ORG} plans to open a new factory near {LOC} next year .",
    "Shares in {ORG} fell 4 percent after {PER} resigned .",
    "{PER} and {PER} met in {LOC} to discuss the {MISC} proposal .",
    "A {MISC} court in {LOC} fined {ORG} 2 million euros .",
    "Police in {LOC} said two people were hurt in the storm .",
    "{PER} told reporters that {ORG} had no plans to leave {LOC} .",
    "The {EVENT} will be held in {LOC} in 2031 .",
    "{ORG} signed a deal with {ORG} worth 300 million dollars .",
    "Prices rose slightly in the third quarter , the report said .",
    "{PER} , who joined {ORG} in 2019 , will move to {LOC} .",
    "Flights between {LOC} and {LOC} were cancelled on Friday .",
    "{MISC} fans celebrated in the streets of {LOC} .",
    "Analysts expect the market to recover by the end of the year .",
    "{PER} said the {MISC} team was ready for the {EVENT} .",
    "{ORG} appointed {PER} as its new chair .",
    "Heavy rain closed roads around {LOC} for three days .",
]


def _ner_fill(template: str, r: random.Random) -> tuple[list[str], list[str]]:
    pools = {"PER": ("PER", NER_PEOPLE), "ORG": ("ORG", NER_ORGS), "LOC": ("LOC", NER_PLACES),
             "MISC": ("MISC", NER_MISC), "EVENT": ("MISC", NER_EVENTS)}
    tokens, tags = [], []
    for i, piece in enumerate(template.split()):
        if not (piece.startswith("{") and piece.endswith("}")):
            tokens.append(piece.capitalize() if i == 0 else piece)
            tags.append("O")
            continue
        kind, pool = pools[piece[1:-1]]
        words = r.choice(pool).split()
        if words[0] == "the":  # "the United Nations": the article is not part of the name
            tokens.append("The" if i == 0 else "the")
            tags.append("O")
            words = words[1:]
        for j, word in enumerate(words):
            tokens.append(word)
            tags.append(("B-" if j == 0 else "I-") + kind)
    return tokens, tags


def ner_sentences(n: int, seed: int) -> list[tuple[list[str], list[str]]]:
    r = random.Random(seed)
    out, seen = [], set()
    while len(out) < n:
        tokens, tags = _ner_fill(r.choice(NER_TEMPLATES), r)
        if " ".join(tokens) not in seen:
            seen.add(" ".join(tokens))
            out.append((tokens, tags))
    return out


def write_ner_examples() -> None:
    lines = ["-DOCSTART- O", ""]
    for tokens, tags in ner_sentences(200, seed=11):
        lines += [f"{t} {g}" for t, g in zip(tokens, tags)] + [""]
    (HERE / "ner.conll").write_text("\n".join(lines), encoding="utf-8")
    with open(HERE / "ner.jsonl", "w", encoding="utf-8") as fh:
        for tokens, tags in ner_sentences(80, seed=12):
            fh.write(json.dumps({"tokens": tokens, "tags": tags}) + "\n")


# Multi-label: contract clauses. A clause mixes the sentences of its categories; a third of
# them are boilerplate with no category at all (the common case in a real contract).
CLAUSE_PARTS = {
    "termination": ["Either party may terminate this agreement with thirty days written notice",
                    "The supplier may end the contract at once if the client fails to pay",
                    "This agreement ends automatically when the project is delivered",
                    "The client may cancel the order before work begins without penalty"],
    "payment": ["Invoices are payable within forty-five days of receipt",
                "The client shall pay a monthly fee of two thousand euros",
                "Late payments carry interest of one percent per month",
                "All fees are due in advance at the start of each quarter"],
    "confidentiality": ["Each party shall keep the other party's information secret",
                        "Confidential information may not be shared with third parties",
                        "The recipient shall protect all trade secrets it receives",
                        "These duties of secrecy survive the end of the agreement"],
    "liability": ["Neither party is liable for indirect or consequential losses",
                  "The supplier's total liability is capped at the fees paid",
                  "The client shall indemnify the supplier against third-party claims",
                  "Nothing here limits liability for fraud or gross negligence"],
}
BOILERPLATE = ["Headings are for convenience only and do not affect interpretation",
               "This agreement is written in English and signed in two copies",
               "Words in the singular include the plural and the other way round",
               "Notices shall be sent to the addresses given on the first page",
               "The parties have read and understood every clause of this document",
               "Schedule A forms part of this agreement"]


def clause_rows(n: int) -> list[dict]:
    r = random.Random(21)
    rows = []
    for _ in range(n):
        k = r.choices([0, 1, 2], weights=[3, 5, 2])[0]
        kinds = sorted(r.sample(list(CLAUSE_PARTS), k))
        parts = [r.choice(CLAUSE_PARTS[c]) for c in kinds]
        if not kinds or r.random() < 0.3:
            parts.append(r.choice(BOILERPLATE))
        r.shuffle(parts)
        rows.append({"clause": ". ".join(parts) + ".", "labels": "; ".join(kinds)})
    return rows


RATING_GOOD = ["works well", "is sturdy", "looks lovely", "arrived early", "is easy to set up",
               "is quiet", "lasts for days", "feels premium", "is great value", "is fast"]
RATING_BAD = ["rattles", "is flimsy", "arrived late", "is hard to set up", "runs hot",
              "drains quickly", "feels cheap", "is overpriced", "is slow", "smells odd"]


def rating_rows(n: int) -> list[dict]:
    """The score follows the share of good remarks, with some reviewer noise."""
    r = random.Random(22)
    rows = []
    for _ in range(n):
        total = r.randint(2, 4)
        good = r.randint(0, total)
        remarks = r.sample(RATING_GOOD, good) + r.sample(RATING_BAD, total - good)
        r.shuffle(remarks)
        subject = r.choice(SUBJECTS)
        text = f"{subject} " + ", ".join(remarks[:-1]) + f" and {remarks[-1]}."
        score = min(10.0, max(0.0, 10 * good / total + r.gauss(0, 0.8)))
        rows.append({"review": text, "score": round(score, 1)})
    return rows


if __name__ == "__main__":
    write_csv(HERE / "sentiment.csv", sentiment_rows(400))
    with open(HERE / "spam.jsonl", "w", encoding="utf-8") as fh:
        for row in spam_rows(160, 24):
            fh.write(json.dumps(row) + "\n")
    write_csv(HERE / "topics.tsv", topic_rows(40), delimiter="\t")
    write_csv(HERE / "pairs.csv", pair_rows())
    write_ner_examples()
    write_csv(HERE / "clauses.csv", clause_rows(360))
    write_csv(HERE / "ratings.csv", rating_rows(400))
