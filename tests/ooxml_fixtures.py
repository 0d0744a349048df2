#!/usr/bin/python3
"""Writes the XLSX and DOCX files that tests/test_ooxml.c reads, and the fuzz seeds.

    /usr/bin/python3 tests/ooxml_fixtures.py OUTDIR NAME...

Each NAME is a function below; "all-small" writes every fixture under 1 MiB (the fuzz seed
corpus is made from those). Real files come from openpyxl and python-docx (Debian's
python3-openpyxl and python3-docx); the rest are hand-made zips, for what those libraries never
write (shared strings, cached formula values, strict namespaces) and for hostile inputs.
"""
import os
import struct
import sys
import zipfile

S = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
P = "http://schemas.openxmlformats.org/package/2006/relationships"
W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
CT = '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>'
S_STRICT = "http://purl.oclc.org/ooxml/spreadsheetml/main"
R_STRICT = "http://purl.oclc.org/ooxml/officeDocument/relationships"

BOMB = ('<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
        + "".join(' <!ENTITY lol%d "%s">\n' % (i, ("&lol%s;" % ("" if i == 1 else i - 1)) * 10)
                  for i in range(1, 10))
        + ']>\n')
XXE = '<?xml version="1.0"?>\n<!DOCTYPE x [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>\n'


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
    parts = [("[Content_Types].xml", CT),
             ("_rels/.rels", rels([("rId1", "officeDocument", "xl/workbook.xml")], r)),
             ("xl/workbook.xml", wb)]
    if sst is not None:
        items.append(("rIdS", "sharedStrings", "sharedStrings.xml"))
        parts.append(("xl/sharedStrings.xml", '<sst xmlns="%s">%s</sst>' % (s, sst)))
    parts.append(("xl/_rels/workbook.xml.rels", rels(items, r)))
    for i, (_, data) in enumerate(sheets):
        parts.append(("xl/worksheets/sheet%d.xml" % (i + 1),
                      prefix + '<worksheet xmlns="%s"><sheetData>%s</sheetData></worksheet>'
                      % (s, data)))
    return parts


def docx_parts(body, styles=None, prefix=""):
    parts = [("[Content_Types].xml", CT),
             ("_rels/.rels", rels([("rId1", "officeDocument", "word/document.xml")])),
             ("word/document.xml",
              prefix + '<w:document xmlns:w="%s"><w:body>%s</w:body></w:document>' % (W, body))]
    if styles is not None:
        parts.append(("word/styles.xml", '<w:styles xmlns:w="%s">%s</w:styles>' % (W, styles)))
    return parts


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
    zwrite(out, [("[Content_Types].xml", CT),
                 ("word/document.xml", '<w:document xmlns:w="%s"/>' % W)])


def nodoc_docx(out):
    zwrite(out, [("[Content_Types].xml", CT)])


def bomb_docx(out):
    zwrite(out, docx_parts("<w:p><w:r><w:t>&lol9;</w:t></w:r></w:p>", prefix=BOMB))


def bomb_nodtd_docx(out):
    zwrite(out, docx_parts("<w:p><w:r><w:t>lol</w:t></w:r></w:p>"))


def wide_docx(out):
    zwrite(out, docx_parts('<w:tbl><w:tr><w:tc><w:tcPr><w:gridSpan w:val="1025"/></w:tcPr>'
                           '<w:p/></w:tc></w:tr></w:tbl>'))


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

BIG = {"cap-exact.xlsx", "cap-over.xlsx", "zeros.xlsx", "liar.xlsx", "total.xlsx",
       "entries-max.xlsx", "entries-over.xlsx"}


def main():
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
