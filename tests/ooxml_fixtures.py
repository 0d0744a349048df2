#!/usr/bin/python3
"""Writes the XLSX and DOCX files that tests/test_ooxml.c reads, and the fuzz seeds.

    /usr/bin/python3 tests/ooxml_fixtures.py OUTDIR NAME...

Each NAME is a function below; "all-small" writes every fixture under 1 MiB (the fuzz seed
corpus is made from those). Real files come from openpyxl and python-docx (Debian's
python3-openpyxl and python3-docx); the rest are hand-made zips, for what those libraries never
write (shared strings, cached formula values, strict namespaces), for hostile inputs, and for
packages with one piece missing or wrong (the pkg-* fixtures).

    /usr/bin/python3 tests/ooxml_fixtures.py --libraries OUTDIR NAME...

opens each NAME (already written to OUTDIR) with python-docx (.docx) or openpyxl (.xlsx) and
prints one line per file: "NAME ok" or "NAME refused: why", so that tests can compare what the
reader accepts with what those libraries accept.
"""
import os
import struct
import sys
import zipfile

S = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
P = "http://schemas.openxmlformats.org/package/2006/relationships"
W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
CTNS = "http://schemas.openxmlformats.org/package/2006/content-types"
OFFDOC = "application/vnd.openxmlformats-officedocument."
CT_TYPES = {
    "xl/workbook.xml": OFFDOC + "spreadsheetml.sheet.main+xml",
    "xl/sharedStrings.xml": OFFDOC + "spreadsheetml.sharedStrings+xml",
    "xl/worksheets/": OFFDOC + "spreadsheetml.worksheet+xml",
    "word/document.xml": OFFDOC + "wordprocessingml.document.main+xml",
    "word/styles.xml": OFFDOC + "wordprocessingml.styles+xml",
    "word/numbering.xml": OFFDOC + "wordprocessingml.numbering+xml",
}
CT_DEFAULTS = [("rels", "application/vnd.openxmlformats-package.relationships+xml"),
               ("xml", "application/xml")]
S_STRICT = "http://purl.oclc.org/ooxml/spreadsheetml/main"
R_STRICT = "http://purl.oclc.org/ooxml/officeDocument/relationships"

BOMB = ('<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
        + "".join(' <!ENTITY lol%d "%s">\n' % (i, ("&lol%s;" % ("" if i == 1 else i - 1)) * 10)
                  for i in range(1, 10))
        + ']>\n')
XXE = '<?xml version="1.0"?>\n<!DOCTYPE x [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>\n'


def content_types(names, defaults=CT_DEFAULTS, overrides=None):
    """[Content_Types].xml for the parts NAMES, as Office writes it: an Override for each part
    whose type is known (CT_TYPES, by name or folder), or OVERRIDES (name: type) when given."""
    if overrides is None:
        overrides = {}
        for n in names:
            for key, t in CT_TYPES.items():
                if n == key or (key.endswith("/") and n.startswith(key)):
                    overrides[n] = t
    return ('<Types xmlns="%s">' % CTNS
            + "".join('<Default Extension="%s" ContentType="%s"/>' % d for d in defaults)
            + "".join('<Override PartName="/%s" ContentType="%s"/>' % (n, t)
                      for n, t in overrides.items())
            + "</Types>")


def with_ct(parts):
    """PARTS with [Content_Types].xml first, made for them."""
    parts = [p for p in parts if p[0] != "[Content_Types].xml"]
    return [("[Content_Types].xml", content_types([n for n, _ in parts]))] + parts


def zwrite(path, parts, method=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(path, "w", method) as z:
        for name, data in parts:
            z.writestr(name, data)


def rels(items, ns=R):
    return ('<Relationships xmlns="%s">' % P
            + "".join('<Relationship Id="%s" Type="%s/%s" Target="%s"/>' % (i, ns, t, g)
                      for i, t, g in items)
            + "</Relationships>")


def xlsx_parts(sheets, sst=None, targets=None, s=S, r=R, prefix=""):
    """SHEETS: (name, sheetData content) pairs; PREFIX goes before a sheet part's XML."""
    wb = ('<workbook xmlns="%s" xmlns:r="%s"><sheets>' % (s, r)
          + "".join('<sheet name="%s" sheetId="%d" r:id="rId%d"/>' % (n, i + 1, i + 1)
                    for i, (n, _) in enumerate(sheets))
          + "</sheets></workbook>")
    targets = targets or ["worksheets/sheet%d.xml" % (i + 1) for i in range(len(sheets))]
    items = [("rId%d" % (i + 1), "worksheet", t) for i, t in enumerate(targets)]
    parts = [("_rels/.rels", rels([("rId1", "officeDocument", "xl/workbook.xml")], r)),
             ("xl/workbook.xml", wb)]
    if sst is not None:
        items.append(("rIdS", "sharedStrings", "sharedStrings.xml"))
        parts.append(("xl/sharedStrings.xml", '<sst xmlns="%s">%s</sst>' % (s, sst)))
    parts.append(("xl/_rels/workbook.xml.rels", rels(items, r)))
    for i, (_, data) in enumerate(sheets):
        parts.append(("xl/worksheets/sheet%d.xml" % (i + 1),
                      prefix + '<worksheet xmlns="%s"><sheetData>%s</sheetData></worksheet>'
                      % (s, data)))
    return with_ct(parts)


def docx_parts(body, styles=None, prefix=""):
    """A document package; with STYLES, a styles part related to the document."""
    parts = [("_rels/.rels", rels([("rId1", "officeDocument", "word/document.xml")])),
             ("word/document.xml",
              prefix + '<w:document xmlns:w="%s"><w:body>%s</w:body></w:document>' % (W, body))]
    if styles is not None:
        parts.append(("word/_rels/document.xml.rels", rels([("rId1", "styles", "styles.xml")])))
        parts.append(("word/styles.xml", '<w:styles xmlns:w="%s">%s</w:styles>' % (W, styles)))
    return with_ct(parts)


# ---- XLSX ----

def openpyxl_xlsx(out):
    import openpyxl
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Data"
    ws["A1"] = 1
    ws["A2"] = 2.5
    ws["A3"] = -3e-5
    ws["A4"] = "=SUM(A1:A3)"
    ws["B1"] = True
    ws["B2"] = False
    ws["C1"] = "text"
    ws["C2"] = "caf\u00e9 \u20ac"
    ws["D10"] = 1e300
    other = wb.create_sheet("Other")
    other["B2"] = "other sheet"
    wb.create_sheet("Third Sheet")["A1"] = 3
    wb.save(out)


def handmade_xlsx(out):
    sst = ("<si><t>plain</t></si>"
           "<si><r><t>rich </t></r><r><rPr><b/></rPr><t>text</t></r>"
           "<rPh sb=\"0\" eb=\"1\"><t>PHONETIC</t></rPh></si>"
           "<si><t xml:space=\"preserve\"> spaced &amp; &lt;escaped&gt; </t></si>")
    data = ('<row r="1"><c r="A1"><v>1</v></c><c r="B1" t="s"><v>0</v></c></row>'
            '<row r="2"><c r="A2"><v>2</v></c><c r="B2" t="s"><v>1</v></c></row>'
            '<row r="3"><c r="A3"><v>3</v></c><c r="B3" t="s"><v>2</v></c></row>'
            '<row r="4"><c r="A4"><f>SUM(A1:A3)</f><v>6</v></c>'
            '<c r="B4" t="inlineStr"><is><r><t>inline </t></r><r><t>runs</t></r></is></c>'
            '<c r="C4" t="str"><f>=UPPER("x")</f><v>X</v></c>'
            '<c r="D4" t="e"><f>1/0</f><v>#DIV/0!</v></c>'
            '<c r="E4" t="b"><v>1</v></c>'
            '<c r="F4" t="d"><v>2024-01-31T00:00:00</v></c>'
            '<c r="G4"><f t="shared" ref="G4:G5" si="0">A4*2</f><v>12</v></c></row>'
            '<row r="5"><c r="G5"><f t="shared" si="0"/><v>0</v></c>'
            '<c r="H5" s="1"/><c r="I5"><v></v></c><c r="J5"><v>  7.5e1 </v></c></row>'
            # no r attributes: positions follow from the order
            '<row><c><v>10</v></c><c t="inlineStr"><is><t>second</t></is></c></row>')
    sheets = [("First", data),
              ("Absolute", '<row r="1"><c r="A1"><v>100</v></c></row>'),
              ("Dotted", '<row r="2"><c r="B2" t="s"><v>0</v></c></row>')]
    targets = ["worksheets/sheet1.xml", "/xl/worksheets/sheet2.xml",
               "./../xl/worksheets//sheet3.xml"]
    zwrite(out, xlsx_parts(sheets, sst, targets))


def strict_xlsx(out):
    zwrite(out, xlsx_parts([("S", '<row r="1"><c r="A1"><v>42</v></c>'
                                  '<c r="B1" t="inlineStr"><is><t>strict</t></is></c></row>')],
                           s=S_STRICT, r=R_STRICT))


def one_sheet(out, data, sst=None):
    zwrite(out, xlsx_parts([("Sheet1", data)], sst))


def badnum_xlsx(out):
    one_sheet(out, '<row r="1"><c r="C7"><v>12abc</v></c></row>')


def badtype_xlsx(out):
    one_sheet(out, '<row r="1"><c r="A1" t="q"><v>1</v></c></row>')


def badbool_xlsx(out):
    one_sheet(out, '<row r="1"><c r="A1" t="b"><v>yes</v></c></row>')


def badref_xlsx(out):
    one_sheet(out, '<row r="1"><c r="XFE1"><v>1</v></c></row>')


def dupcell_xlsx(out):
    one_sheet(out, '<row r="2"><c r="B2"><v>1</v></c><c r="B2"><v>2</v></c></row>')


def sstrange_xlsx(out):
    one_sheet(out, '<row r="1"><c r="A1" t="s"><v>5</v></c></row>', "<si><t>only</t></si>")


def nosst_xlsx(out):
    one_sheet(out, '<row r="1"><c r="A1" t="s"><v>0</v></c></row>')


def noparts_zip(out):
    zwrite(out, [("hello.txt", "hello")])


def nosheet_xlsx(out):
    zwrite(out, [p for p in xlsx_parts([("Gone", "")]) if p[0] != "xl/worksheets/sheet1.xml"])


def norels_xlsx(out):
    zwrite(out, [p for p in xlsx_parts([("S", "")]) if p[0] != "xl/_rels/workbook.xml.rels"])


def norootrels_xlsx(out):
    # no _rels/.rels: the workbook is found at xl/workbook.xml
    zwrite(out, [p for p in xlsx_parts([("S", '<row r="1"><c r="A1"><v>5</v></c></row>')])
                 if p[0] != "_rels/.rels"])


def escape_xlsx(out):
    zwrite(out, xlsx_parts([("S", "")], targets=["../../outside.xml"]))


def dupentry_xlsx(out):
    import warnings
    warnings.simplefilter("ignore")
    parts = xlsx_parts([("S", '<row r="1"><c r="A1"><v>1</v></c></row>')])
    parts.append(("xl/worksheets/sheet1.xml",
                  '<worksheet xmlns="%s"><sheetData><row r="1"><c r="A1"><v>2</v></c></row>'
                  '</sheetData></worksheet>' % S))
    zwrite(out, parts)


def bomb_xlsx(out):
    zwrite(out, xlsx_parts([("S", '<row r="1"><c r="A1" t="inlineStr"><is><t>&lol9;</t></is>'
                                  '</c></row>')], prefix=BOMB))


def bomb_nodtd_xlsx(out):
    # the positive control: the same file without the DOCTYPE (and its entity) opens
    zwrite(out, xlsx_parts([("S", '<row r="1"><c r="A1" t="inlineStr"><is><t>lol</t></is>'
                                  '</c></row>')]))


def xxe_xlsx(out):
    zwrite(out, xlsx_parts([("S", '<row r="1"><c r="A1" t="inlineStr"><is><t>&xxe;</t></is>'
                                  '</c></row>')], prefix=XXE))


def bomb_rels_xlsx(out):
    parts = xlsx_parts([("S", "")])
    parts = [(n, BOMB + d if n == "_rels/.rels" else d) for n, d in parts]
    zwrite(out, parts)


def padded_sheet(size):
    """A sheet of SIZE bytes: one cell, then white space and empty comments inside sheetData
    (libxml2 refuses a single run of white space over 10 MB, or much after the root)."""
    head = '<worksheet xmlns="%s"><sheetData><row r="1"><c r="A1"><v>1</v></c></row>' % S
    tail = "</sheetData></worksheet>"
    pad = size - len(head) - len(tail)
    chunk = " " * 4089 + "<!---->"
    return head + chunk * (pad // len(chunk)) + " " * (pad % len(chunk)) + tail


def cap_exact_xlsx(out):
    parts = xlsx_parts([("S", "")])
    parts[-1] = (parts[-1][0], padded_sheet(64 << 20))
    zwrite(out, parts)


def cap_over_xlsx(out):
    parts = xlsx_parts([("S", "")])
    parts[-1] = (parts[-1][0], padded_sheet((64 << 20) + 1))
    zwrite(out, parts)


def zeros_xlsx(out):
    parts = xlsx_parts([("S", "")])
    parts[-1] = (parts[-1][0], b"\0" * (100 << 20))
    zwrite(out, parts)


def liar_xlsx(out):
    """Like zeros.xlsx, but the sheet's headers claim 100 bytes uncompressed."""
    zeros_xlsx(out)
    with open(out, "rb") as f:
        b = bytearray(f.read())
    name = b"xl/worksheets/sheet1.xml"
    for sig, size_at, name_len_at, name_at in ((b"PK\x03\x04", 22, 26, 30),
                                               (b"PK\x01\x02", 24, 28, 46)):
        i = 0
        while (i := b.find(sig, i)) >= 0:
            n = struct.unpack_from("<H", b, i + name_len_at)[0]
            if bytes(b[i + name_at:i + name_at + n]) == name:
                struct.pack_into("<I", b, i + size_at, 100)
            i += 4
    with open(out, "wb") as f:
        f.write(b)


def total_xlsx(out):
    sheets = [("S%d" % i, "") for i in range(5)]
    parts = xlsx_parts(sheets)
    parts = [(n, padded_sheet(60 << 20) if n.startswith("xl/worksheets/") else d)
             for n, d in parts]
    zwrite(out, parts)


def entries(out, n):
    parts = xlsx_parts([("S", '<row r="1"><c r="A1"><v>1</v></c></row>')])
    parts += [("pad/%05d" % i, "") for i in range(n - len(parts))]
    zwrite(out, parts, zipfile.ZIP_STORED)


def entries_max_xlsx(out):
    entries(out, 10000)


def entries_over_xlsx(out):
    entries(out, 10001)


# ---- DOCX ----

def python_docx(out):
    import docx
    d = docx.Document()
    d.add_heading("The Title", 0)
    d.add_heading("Introduction", 1)
    d.add_paragraph("Body text.")
    p = d.add_paragraph()
    run = p.add_run("tab")
    run.add_tab()
    run.add_text("bed")
    run.add_break()
    p.add_run("next line")
    d.add_heading("Details", 2)
    t = d.add_table(rows=3, cols=3)
    for r in range(3):
        for c in range(3):
            t.cell(r, c).text = "r%dc%d" % (r, c)
    wide = t.cell(0, 0).merge(t.cell(0, 1))
    wide.text = "wide"
    tall = t.cell(1, 0).merge(t.cell(2, 0))
    tall.text = "tall"
    t.cell(1, 2).add_paragraph("second paragraph")
    d.add_paragraph("After the table")
    d.add_heading("Deep", 9)
    d.save(out)


def handmade_docx(out):
    body = (
        # a localised heading style: the id says nothing, the name says heading 1
        '<w:p><w:pPr><w:pStyle w:val="berschrift1"/></w:pPr><w:r><w:t>Kapitel</w:t></w:r></w:p>'
        # an id that looks like a heading, with no style part entry
        '<w:p><w:pPr><w:pStyle w:val="heading3"/></w:pPr><w:r><w:t>By id</w:t></w:r></w:p>'
        # a style named like a heading but not a heading level
        '<w:p><w:pPr><w:pStyle w:val="Heading10"/></w:pPr><w:r><w:t>Not one</w:t></w:r></w:p>'
        # tabs in pPr are tab stops, not text; hyperlinks, insertions and smart tags are read;
        # deletions and field instructions are not
        '<w:p><w:pPr><w:tabs><w:tab w:val="left" w:pos="720"/></w:tabs></w:pPr>'
        '<w:hyperlink><w:r><w:t>link</w:t></w:r></w:hyperlink>'
        '<w:ins><w:r><w:t xml:space="preserve"> inserted</w:t></w:r></w:ins>'
        '<w:del><w:r><w:delText> deleted</w:delText></w:r></w:del>'
        '<w:r><w:fldChar w:fldCharType="begin"/></w:r><w:r><w:instrText>PAGE</w:instrText></w:r>'
        '<w:r><w:fldChar w:fldCharType="separate"/></w:r><w:r><w:t xml:space="preserve"> 7'
        '</w:t></w:r><w:r><w:fldChar w:fldCharType="end"/></w:r></w:p>'
        # a content control at body level, and a paragraph in another namespace (skipped)
        '<w:sdt><w:sdtPr/><w:sdtContent><w:p><w:r><w:t>in a control</w:t></w:r></w:p>'
        '</w:sdtContent></w:sdt>'
        '<x:p xmlns:x="urn:other"><w:r><w:t>foreign</w:t></w:r></x:p>'
        # prefixes are arbitrary: only the namespace counts
        '<word:p xmlns:word="WNS"><word:r><word:t>other prefix</word:t></word:r></word:p>'
        # a table with a nested table in its second cell
        '<w:tbl><w:tr><w:tc><w:p><w:r><w:t>outer</w:t></w:r></w:p></w:tc>'
        '<w:tc><w:tbl><w:tr><w:tc><w:p><w:r><w:t>inner</w:t></w:r></w:p></w:tc></w:tr></w:tbl>'
        '<w:p><w:r><w:t>after inner</w:t></w:r></w:p></w:tc></w:tr>'
        # a short row, padded with ""
        '<w:tr><w:tc><w:p><w:r><w:t>short</w:t></w:r></w:p></w:tc></w:tr></w:tbl>'
        '<w:p><w:r><w:t>end</w:t></w:r></w:p>').replace("WNS", W)
    styles = ('<w:style w:type="paragraph" w:styleId="berschrift1"><w:name w:val="heading 1"/>'
              '</w:style>'
              '<w:style w:type="paragraph" w:styleId="Heading10"><w:name w:val="heading 10"/>'
              '</w:style>')
    zwrite(out, docx_parts(body, styles))


def nobody_docx(out):
    zwrite(out, [(n, '<w:document xmlns:w="%s"/>' % W if n == "word/document.xml" else d)
                 for n, d in docx_parts("")])


def nodoc_docx(out):
    zwrite(out, [p for p in docx_parts("") if p[0] != "word/document.xml"])


def bomb_docx(out):
    zwrite(out, docx_parts("<w:p><w:r><w:t>&lol9;</w:t></w:r></w:p>", prefix=BOMB))


def bomb_nodtd_docx(out):
    zwrite(out, docx_parts("<w:p><w:r><w:t>lol</w:t></w:r></w:p>"))


def wide_docx(out):
    zwrite(out, docx_parts('<w:tbl><w:tr><w:tc><w:tcPr><w:gridSpan w:val="1025"/></w:tcPr>'
                           '<w:p/></w:tc></w:tr></w:tbl>'))


# ---- packages: one piece missing or wrong at a time ----
#
# The base packages are complete: what Word and Excel write, less what the reader never needs.
# Each variant changes one thing; tests/test_ooxml.c says what the reader must answer, and
# compares it with what python-docx and openpyxl answer (--libraries).

PKG_BODY = ('<w:p><w:pPr><w:pStyle w:val="Heading1"/></w:pPr><w:r><w:t>Minutes</w:t></w:r></w:p>'
            '<w:p><w:r><w:t>Body text.</w:t></w:r></w:p>')
PKG_STYLES = ('<w:style w:type="paragraph" w:styleId="Heading1"><w:name w:val="heading 1"/>'
              '</w:style>')
PLAIN_BODY = '<w:p><w:r><w:t>Minutes</w:t></w:r></w:p>'
CT_OF_XML = [("rels", CT_DEFAULTS[0][1])]  # no Default for .xml: only Overrides type parts


def pkg_docx():
    return docx_parts(PKG_BODY, PKG_STYLES)


def pkg_xlsx():
    return xlsx_parts([("Data", '<row r="1"><c r="A1" t="s"><v>0</v></c>'
                                '<c r="B1"><v>7</v></c></row>')], "<si><t>name</t></si>")


def change(parts, name, fn):
    """PARTS with part NAME replaced by fn(its text), or left out when fn gives None."""
    out = []
    for n, d in parts:
        if n == name:
            d = fn(d)
            if d is None:
                continue
        out.append((n, d))
    return out


def retype(parts, overrides, defaults=CT_DEFAULTS):
    """PARTS with [Content_Types].xml made of DEFAULTS and OVERRIDES (name: type) alone."""
    return change(parts, "[Content_Types].xml", lambda d: content_types([], defaults, overrides))


def known_types(parts, **changes):
    """The Overrides content_types() gives PARTS, with CHANGES (name with / as __: type)."""
    o = {}
    for n, _ in parts:
        for key, t in CT_TYPES.items():
            if n == key or (key.endswith("/") and n.startswith(key)):
                o[n] = t
    for k, t in changes.items():
        k = k.replace("__", "/").replace("_xml", ".xml")
        if t is None:
            o.pop(k, None)
        else:
            o[k] = t
    return o


def pkg(make):
    return lambda out: zwrite(out, make())


def docx_no_ct_for(part):
    base = pkg_docx()
    o = known_types(base)
    o.pop(part)
    return retype(base, o, CT_OF_XML)


def docx_doc_typed(t):
    base = pkg_docx()
    o = known_types(base)
    o["word/document.xml"] = t
    return retype(base, o)


def docx_moved():
    """The document at word/main.xml: found through _rels/.rels, not by its usual name."""
    base = pkg_docx()
    moved = [("word/main.xml" if n == "word/document.xml" else
              "word/_rels/main.xml.rels" if n == "word/_rels/document.xml.rels" else n, d)
             for n, d in base]
    moved = change(moved, "_rels/.rels", lambda d: d.replace("word/document.xml", "word/main.xml"))
    return retype(moved, known_types(moved, word__main_xml=CT_TYPES["word/document.xml"]))


def docx_rels(items):
    return change(pkg_docx(), "word/_rels/document.xml.rels", lambda d: rels(items))


def xlsx_no_ct_for(part):
    base = pkg_xlsx()
    o = known_types(base)
    o.pop(part)
    return retype(base, o, CT_OF_XML)


def xlsx_typed(part, t):
    base = pkg_xlsx()
    o = known_types(base)
    o[part] = t
    return retype(base, o)


PACKAGES = {
    # DOCX
    "pkg-ok.docx": pkg_docx,
    "pkg-noct.docx": lambda: [p for p in pkg_docx() if p[0] != "[Content_Types].xml"],
    "pkg-ctbad.docx": lambda: change(pkg_docx(), "[Content_Types].xml", lambda d: d[:-3]),
    "pkg-ctnodoc.docx": lambda: docx_no_ct_for("word/document.xml"),
    "pkg-ctxml.docx": lambda: retype(pkg_docx(), known_types(pkg_docx(),
                                                             word__document_xml=None)),
    "pkg-ctsheet.docx": lambda: docx_doc_typed(CT_TYPES["xl/workbook.xml"]),
    "pkg-ctdocm.docx": lambda: docx_doc_typed(
        "application/vnd.ms-word.document.macroEnabled.main+xml"),
    "pkg-ctdefault.docx": lambda: retype(
        pkg_docx(), known_types(pkg_docx(), word__document_xml=None),
        [CT_DEFAULTS[0], ("xml", CT_TYPES["word/document.xml"])]),
    "pkg-ctcase.docx": lambda: retype(
        pkg_docx(), {k.upper(): v for k, v in known_types(pkg_docx()).items()}),
    "pkg-ctdup.docx": lambda: change(pkg_docx(), "[Content_Types].xml", lambda d: d.replace(
        "</Types>", '<Override PartName="/WORD/document.xml" ContentType="application/xml"/>'
        "</Types>")),
    "pkg-norels.docx": lambda: [p for p in pkg_docx() if p[0] != "_rels/.rels"],
    "pkg-nooffice.docx": lambda: change(pkg_docx(), "_rels/.rels", lambda d: rels([])),
    "pkg-twooffice.docx": lambda: change(pkg_docx(), "_rels/.rels", lambda d: rels(
        [("rId1", "officeDocument", "word/document.xml"),
         ("rId2", "officeDocument", "word/document.xml")])),
    "pkg-moved.docx": docx_moved,
    "pkg-movedbad.docx": lambda: change(pkg_docx(), "_rels/.rels", lambda d: d.replace(
        "word/document.xml", "word/main.xml")),
    "pkg-nodocrels.docx": lambda: [p for p in pkg_docx()
                                   if p[0] != "word/_rels/document.xml.rels"],
    "pkg-nostylesrel.docx": lambda: docx_rels([]),
    "pkg-nostyles.docx": lambda: [p for p in pkg_docx()
                                  if p[0] not in ("word/_rels/document.xml.rels",
                                                  "word/styles.xml")],
    "pkg-plain.docx": lambda: docx_parts(PLAIN_BODY),
    "pkg-stylesmissing.docx": lambda: [p for p in pkg_docx() if p[0] != "word/styles.xml"],
    "pkg-stylesxml.docx": lambda: retype(pkg_docx(), known_types(pkg_docx(),
                                                                 word__styles_xml=None)),
    "pkg-stylesnoct.docx": lambda: docx_no_ct_for("word/styles.xml"),
    "pkg-targetmissing.docx": lambda: docx_rels([("rId1", "styles", "styles.xml"),
                                                 ("rId2", "numbering", "numbering.xml")]),
    "pkg-external.docx": lambda: change(
        pkg_docx(), "word/_rels/document.xml.rels", lambda d: d.replace(
            "</Relationships>", '<Relationship Id="rId9" Type="%s/hyperlink" '
            'Target="https://example.com/" TargetMode="External"/></Relationships>' % R)),
    "pkg-dupid.docx": lambda: docx_rels([("rId1", "styles", "styles.xml"),
                                         ("rId1", "styles", "styles.xml")]),
    "pkg-undefined.docx": lambda: docx_parts(PKG_BODY, '<w:style w:type="paragraph" '
                                             'w:styleId="Normal"><w:name w:val="Normal"/>'
                                             '</w:style>'),
    # XLSX
    "pkg-ok.xlsx": pkg_xlsx,
    "pkg-noct.xlsx": lambda: [p for p in pkg_xlsx() if p[0] != "[Content_Types].xml"],
    "pkg-ctnowb.xlsx": lambda: xlsx_no_ct_for("xl/workbook.xml"),
    "pkg-ctxml.xlsx": lambda: retype(pkg_xlsx(), known_types(pkg_xlsx(), xl__workbook_xml=None)),
    "pkg-ctdocx.xlsx": lambda: xlsx_typed("xl/workbook.xml", CT_TYPES["word/document.xml"]),
    "pkg-xlsm.xlsx": lambda: xlsx_typed("xl/workbook.xml",
                                        "application/vnd.ms-excel.sheet.macroEnabled.main+xml"),
    "pkg-twowb.xlsx": lambda: xlsx_typed("xl/other.xml", CT_TYPES["xl/workbook.xml"]),
    "pkg-ctnosheet.xlsx": lambda: xlsx_no_ct_for("xl/worksheets/sheet1.xml"),
    "pkg-ctnosst.xlsx": lambda: xlsx_no_ct_for("xl/sharedStrings.xml"),
    "pkg-sstxml.xlsx": lambda: retype(pkg_xlsx(), known_types(pkg_xlsx(),
                                                              xl__sharedStrings_xml=None)),
    "pkg-norels.xlsx": lambda: [p for p in pkg_xlsx() if p[0] != "_rels/.rels"],
    "pkg-nowbrels.xlsx": lambda: [p for p in pkg_xlsx() if p[0] != "xl/_rels/workbook.xml.rels"],
    "pkg-badrid.xlsx": lambda: change(pkg_xlsx(), "xl/workbook.xml",
                                      lambda d: d.replace('r:id="rId1"', 'r:id="rId9"')),
    "pkg-nosstrel.xlsx": lambda: change(pkg_xlsx(), "xl/_rels/workbook.xml.rels",
                                        lambda d: rels([("rId1", "worksheet",
                                                         "worksheets/sheet1.xml")])),
}


def libraries(outdir, names):
    import warnings
    warnings.simplefilter("ignore")
    for name in names:
        path = os.path.join(outdir, name)
        try:
            if name.endswith(".docx"):
                import docx
                d = docx.Document(path)
                # what a checker reads: the text and the style of each paragraph; the first
                # one's style is printed
                styles = [(p.text, p.style.name if p.style is not None else "") for p in
                          d.paragraphs]
                print(name, "ok", styles[0][1] if styles else "")
            else:
                import openpyxl
                wb = openpyxl.load_workbook(path)
                [[c.value for row in wb[s].iter_rows() for c in row] for s in wb.sheetnames]
                print(name, "ok")
        except Exception as e:  # noqa: BLE001 (what refuses it is the point)
            print(name, "refused:", type(e).__name__, str(e).replace("\n", " ")[:200])


FIXTURES = {
    "openpyxl.xlsx": openpyxl_xlsx,
    "handmade.xlsx": handmade_xlsx,
    "strict.xlsx": strict_xlsx,
    "badnum.xlsx": badnum_xlsx,
    "badtype.xlsx": badtype_xlsx,
    "badbool.xlsx": badbool_xlsx,
    "badref.xlsx": badref_xlsx,
    "dupcell.xlsx": dupcell_xlsx,
    "sstrange.xlsx": sstrange_xlsx,
    "nosst.xlsx": nosst_xlsx,
    "noparts.zip": noparts_zip,
    "nosheet.xlsx": nosheet_xlsx,
    "norels.xlsx": norels_xlsx,
    "norootrels.xlsx": norootrels_xlsx,
    "escape.xlsx": escape_xlsx,
    "dupentry.xlsx": dupentry_xlsx,
    "bomb.xlsx": bomb_xlsx,
    "bomb-nodtd.xlsx": bomb_nodtd_xlsx,
    "xxe.xlsx": xxe_xlsx,
    "bomb-rels.xlsx": bomb_rels_xlsx,
    "cap-exact.xlsx": cap_exact_xlsx,
    "cap-over.xlsx": cap_over_xlsx,
    "zeros.xlsx": zeros_xlsx,
    "liar.xlsx": liar_xlsx,
    "total.xlsx": total_xlsx,
    "entries-max.xlsx": entries_max_xlsx,
    "entries-over.xlsx": entries_over_xlsx,
    "python-docx.docx": python_docx,
    "handmade.docx": handmade_docx,
    "nobody.docx": nobody_docx,
    "nodoc.docx": nodoc_docx,
    "bomb.docx": bomb_docx,
    "bomb-nodtd.docx": bomb_nodtd_docx,
    "wide.docx": wide_docx,
}
FIXTURES.update({name: pkg(make) for name, make in PACKAGES.items()})

BIG = {"cap-exact.xlsx", "cap-over.xlsx", "zeros.xlsx", "liar.xlsx", "total.xlsx",
       "entries-max.xlsx", "entries-over.xlsx"}


def main():
    if len(sys.argv) > 3 and sys.argv[1] == "--libraries":
        libraries(sys.argv[2], sys.argv[3:])
        return
    if len(sys.argv) < 3:
        sys.exit("usage: ooxml_fixtures.py OUTDIR NAME... (or all-small)")
    outdir = sys.argv[1]
    names = sys.argv[2:]
    if names == ["all-small"]:
        names = [n for n in FIXTURES if n not in BIG]
    for name in names:
        if name not in FIXTURES:
            sys.exit("ooxml_fixtures.py: unknown fixture " + name)
        FIXTURES[name](os.path.join(outdir, name))


if __name__ == "__main__":
    main()
