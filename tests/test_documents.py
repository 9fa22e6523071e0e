"""Reading the seeds folder: every kind of bad file is skipped with a clear warning, the rest is read."""

import os

from formats_data import blank_pdf

from embeddings.documents import doc_key, read_documents, scan_seeds

EXTENSIONS = (".txt", ".md", ".pdf", ".html", ".htm")


def minimal_pdf(text: str) -> bytes:
    """A one-page PDF whose text layer holds ``text`` (built by hand: no PDF writer is needed)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def test_bad_files_are_skipped_with_one_warning_each_and_the_rest_is_read(tmp_path):
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    outside = tmp_path / "secret.txt"
    outside.write_text("a file outside the seeds folder")
    (seeds / "good.txt").write_text("Russia and the Taliban met in Moscow.", encoding="utf-8")
    (seeds / "cp1252.txt").write_bytes(b"Caf\xe9 talks \x93quoted\x94 in Kabul.")
    (seeds / "empty.txt").write_text("")
    (seeds / "binary.txt").write_bytes(bytes(range(256)) * 50)
    (seeds / "report.pdf").write_bytes(minimal_pdf("Moscow hosted the talks in 2017"))
    (seeds / "scan.pdf").write_bytes(blank_pdf())
    (seeds / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    with open(seeds / "huge.txt", "wb") as handle:  # 200 MB, sparse: costs no disk
        handle.truncate(200 * 1024 * 1024)
    os.symlink(outside, seeds / "escape.txt")
    (seeds / "page.html").write_text(
        "<html><head><title>A page</title><script>var x=1;</script></head>"
        "<body><nav>menu</nav><p>Kabul fell in August 2021.</p></body></html>"
    )
    (seeds / ".hidden.txt").write_text("editor swap file")
    (seeds / "notes.docx").write_bytes(b"unsupported type, silently ignored")

    warnings: list[str] = []
    sources = scan_seeds(seeds, EXTENSIONS, max_bytes=20_000_000, warn=warnings)
    documents = {d.doc_id: d for d in read_documents(sources, warnings)}

    assert sorted(documents) == ["cp1252.txt", "good.txt", "page.html", "report.pdf"]
    assert "Café talks “quoted” in Kabul." in documents["cp1252.txt"].text
    assert "Moscow hosted the talks in 2017" in documents["report.pdf"].text
    assert "Kabul fell in August 2021." in documents["page.html"].text and "var x" not in documents["page.html"].text
    for name, reason in [
        ("empty.txt", "no text"),
        ("binary.txt", "binary"),
        ("scan.pdf", "no text layer"),
        ("broken.pdf", "not a readable PDF"),
        ("huge.txt", "over the"),
        ("escape.txt", "outside the seeds folder"),
    ]:
        assert sum(name in w for w in warnings) == 1, (name, warnings)
        assert any(name in w and reason in w for w in warnings), (name, warnings)
    assert not any("notes.docx" in w or ".hidden" in w for w in warnings)
    assert all("a file outside" not in d.text for d in documents.values())


def test_doc_keys_are_short_and_stable():
    key = doc_key("001_1eebfef159720684.txt")
    assert key == doc_key("001_1eebfef159720684.txt") and len(key) == 10 and key != doc_key("other.txt")
