"""Reference solution: contacts_raw.csv -> contacts_clean.csv."""
import csv
import re


def split_name(full):
    full = " ".join(full.split())
    if "," in full:
        last, first = [p.strip() for p in full.split(",", 1)]
    else:
        first, _, last = full.rpartition(" ")
    return first, last


def cap(words):
    return " ".join(w[:1].upper() + w[1:].lower() for w in words.split())


def phone(raw):
    main = re.split(r"(?i)\s*(?:ext\.?|x)\s*\d+\s*$", raw)[0]
    digits = re.sub(r"\D", "", main)
    if len(digits) == 11 and digits.startswith("1"):
        digits = digits[1:]
    if len(digits) != 10:
        return None
    return "%s-%s-%s" % (digits[:3], digits[3:6], digits[6:])


EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
seen = set()
out = []
with open("contacts_raw.csv", newline="", encoding="utf-8") as f:
    for r in csv.DictReader(f):
        email = r["email"].strip().lower()
        if not EMAIL.match(email) or email in seen:
            continue
        seen.add(email)
        first, last = split_name(r["full_name"])
        out.append([cap(first), cap(last), email, phone(r["phone"]) or "", r["company"].strip()])
out.sort(key=lambda x: (x[1].lower(), x[0].lower()))
with open("contacts_clean.csv", "w", newline="", encoding="utf-8") as f:
    w = csv.writer(f)
    w.writerow(["first_name", "last_name", "email", "phone", "company"])
    w.writerows(out)
