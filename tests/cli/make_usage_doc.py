#!/usr/bin/python3
"""Writes docs/usage.md: the README's usage section, with every command run for real and its output pasted in.

    /usr/bin/python3 tests/cli/make_usage_doc.py [--tolk build/tolk] [--model models/en-de] [--out docs/usage.md]

Rerun it whenever the default model or the CLI changes, so the README never shows output tolk does not produce.
The commands run in a scratch directory holding the small example files the text mentions; the model is given
through TOLK_MODEL, so the commands read as a user types them with the default model installed.
"""
import argparse
import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

FILES = {
    "notes.txt": "The meeting starts at nine o'clock.\n\nPlease bring your laptop. We will review the budget.\n"
                 "Thank you!\n",
    "a.txt": "Good morning.\nThe train is late.\n",
    "b.txt": "Where is the station?\n",
    "docs.jsonl": '{"id": "q1", "text": "How much does the ticket cost?"}\n'
                  '{"id": "q2", "text": "The museum is closed on Mondays."}\n',
    "broken.txt": b"Caf\xe9 au lait, please.\nA line with a NUL \x00 byte.\n",
}


def run(cmd, cwd, env, merge=False):
    """(exit code, stdout, stderr); with merge, stderr goes into stdout in the order it was written."""
    proc = subprocess.run(["bash", "-c", cmd], cwd=cwd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT if merge else subprocess.PIPE)
    err = "" if merge else proc.stderr.decode("utf-8", "replace")
    return proc.returncode, proc.stdout.decode("utf-8", "replace"), err


def block(cmd, cwd, env, show_rc=False, max_lines=None):
    """A shell transcript: "$ cmd", then stdout and stderr interleaved as a terminal would show them."""
    rc, text, _ = run(cmd, cwd, env, merge=True)
    lines = text.rstrip("\n").split("\n") if text.strip() else []
    if max_lines and len(lines) > max_lines:
        lines = lines[:max_lines] + ["..."]
    body = "\n".join(["$ " + cmd] + lines)
    if show_rc:
        body += f"\n$ echo $?\n{rc}"
    return "```console\n" + body + "\n```\n"


def progress_frame(tolk, cwd, env, args):
    """One frame of the live progress line, captured on a pseudo-terminal with script(1)."""
    typescript = Path(cwd) / "typescript"
    subprocess.run(["script", "-qfec", f"{shlex.quote(tolk)} {args}", str(typescript)], cwd=cwd, env=env,
                   capture_output=True)
    frames = [f for f in re.split(r"[\r\n]+", typescript.read_text("utf-8", "replace")) if "lines" in f]
    frames = [re.sub(r"\x1b\[K", "", f).strip() for f in frames]
    live = [f for f in frames if "%" in f and "ETA" in f]
    return live[len(live) // 2] if live else "(no progress frame captured)"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tolk", default=str(REPO / "build" / "tolk"))  # any path; made absolute
    ap.add_argument("--model", default=str(REPO / "models" / "en-de"))
    ap.add_argument("--corpus", default=str(REPO / "work" / "data" / "en-de" / "valid.en"),
                    help="English lines for the corpus example (the first 200 are used)")
    ap.add_argument("--out", default=str(REPO / "docs" / "usage.md"))
    args = ap.parse_args()
    args.tolk = str(Path(args.tolk).resolve())
    tolk_dir = str(Path(args.tolk).parent)

    with tempfile.TemporaryDirectory() as cwd:
        for name, content in FILES.items():
            (Path(cwd) / name).write_bytes(content if isinstance(content, bytes) else content.encode())
        corpus_lines = Path(args.corpus).read_text("utf-8").splitlines()[:200]
        (Path(cwd) / "corpus.en").write_text("\n".join(corpus_lines) + "\n", "utf-8")
        env = dict(os.environ, PATH=tolk_dir + os.pathsep + os.environ["PATH"])
        env.pop("TOLK_MODEL", None)
        model = Path(args.model).resolve()
        if model != (REPO / "models" / "en-de").resolve():
            env["TOLK_MODEL"] = str(model)  # stands in for the default model
        # Paths of this machine read as a user's checkout in ~/tolk.
        paths = [(str(model), "~/tolk/models/en-de"), (str(model.parent), "~/tolk/models"), (str(REPO), "~/tolk"),
                 (cwd, "~")]
        local = lambda text: [text := text.replace(a, b) for a, b in paths][-1]  # noqa: E731
        b = lambda cmd, **kw: local(block(cmd, cwd, env, **kw))  # noqa: E731

        # `tolk models` as it reads once the model is installed: a stand-in model is found through TOLK_MODEL_PATH.
        models_env = dict(env, TOLK_MODEL_PATH=str(model.parent))
        models_env.pop("TOLK_MODEL", None)
        models_block = local(block("tolk models", cwd, models_env))

        # The interactive transcript: lines typed at the terminal, each answered at once.
        typed = ["Hello, how are you?", "I would like a cup of coffee."]
        _, answers, _ = run("tolk " + " ".join(shlex.quote(t) for t in typed), cwd, env)
        answers = answers.rstrip("\n").split("\n")
        session = ["$ tolk", f"tolk: {model.name} ready; type a line and press Enter (Ctrl-D ends)"]
        for t, a in zip(typed, answers):
            session += [t, a]
        frame = progress_frame(args.tolk, cwd, env, "-i corpus.en -o corpus.de")

        doc = f"""## Usage

tolk translates with the model in `models/en-de` unless told otherwise: `-m DIR` picks a model directory (any
Hugging Face MarianMT / OPUS-MT directory), `TOLK_MODEL=DIR` sets the default, and `--from/--to` pick among the
models `tolk models` lists. Every input line gives exactly one output line, in order; empty lines stay empty.
(That is deliberate and differs from transformers, whose `generate()` on an empty string translates "</s>" alone
and prints whatever the model makes of it: a pipeline that counts lines needs the empty line back.)
Warnings, progress and the summary go to stderr, never to stdout.

### In the terminal

Text given as arguments is translated, one output line per argument (`tolk TEXT` is short for
`tolk translate TEXT`):

{b('tolk "The weather is nice today."')}
{b('tolk "Good morning." "Where is the train station?"')}
A line with several sentences is split into sentences (ICU's sentence rules), translated as a batch and rejoined
on one line; `--no-split` translates the line as a single sequence:

{b('tolk "I missed the bus. Now I am late for work."')}
`--nbest N` shows the N best translations with their scores, in the `N ||| translation ||| score` form Moses and
Marian use (N counts input lines from 0); `--beam` sets the beam size (the model's own default is 4):

{b('tolk --nbest 3 "How are you?"')}
Run without text and with the terminal as input, tolk translates each line as soon as you press Enter
(Ctrl-D ends):

```console
{chr(10).join(session)}
```

What model is in use, and what it contains:

{models_block}
{b('tolk info', max_lines=12)}
### In pipes and with files

Without text arguments tolk reads stdin and writes one line per input line:

{b('echo "The children are playing in the garden." | tolk')}
{b('cat notes.txt')}
{b('tolk < notes.txt')}
`-i` names input files (`-` is stdin) and `-o` the output file. The output is written to a temporary file and
renamed into place when complete, so an interrupted or failed run never leaves a truncated file behind:

{b('tolk -i notes.txt -o notes.de.txt && cat notes.de.txt')}
`--format tsv` keeps the source beside the translation:

{b('tolk --format tsv -i notes.txt')}
A program that writes one line and waits for the answer needs every line translated and flushed at once; that is
`--unbuffered` (automatic when stdin is a terminal). Without it tolk reads ahead to batch lines, which is faster
for whole files but would leave such a caller waiting:

{b('(echo "First question?"; sleep 1; echo "Second question?") | tolk --unbuffered')}
Bad input never costs a line: invalid UTF-8 is replaced by U+FFFD and translated, with a warning naming the line;
NUL bytes and other control characters become spaces:

{b('tolk -i broken.txt')}
Mistakes get one line on stderr and exit code 2 (1 is an internal error, 130 an interrupted run), and no output
file is created:

{b('tolk -i missing.txt -o out.txt', show_rc=True)}
{b('tolk --beam 2 --nbest 3 "Hello."', show_rc=True)}
### Corpora

For whole corpora tolk reads a window of lines, sorts them by length, translates them in batches bounded by a
token budget (`--max-batch-tokens`, rows x longest row, capped at `--batch-size` rows), and writes the results in
input order. A sentence gets the same translation whichever batch it lands in. `--workers` translates batches in
parallel over one shared copy of the weights, each with `--threads` oneDNN threads; by default a corpus gets one
single-threaded worker per core, which measured faster than fewer workers with more threads each.

On a terminal a live progress line shows lines done, speed and the time left, e.g.

```console
{frame}
```

and a one-line summary follows at the end (`--summary` prints it also when stderr is not a terminal, `--quiet`
silences both):

{b('tolk -i corpus.en -o corpus.de --summary')}
{b('wc -l corpus.en corpus.de')}
Many files at once, one output file each:

{b('tolk -i a.txt b.txt --output-dir out/ && head out/*')}
JSONL in and out (`{{"id": ..., "text": ...}}` per line; files ending in `.jsonl` are read as JSONL
automatically), with scores, n-best lists (`--nbest`) and target tokens (`--tokens`) on request:

{b('tolk --format jsonl --scores -i docs.jsonl')}
Ctrl-C stops a run cleanly: the lines finished so far are flushed to stdout, a temporary `-o` file is removed, and
tolk exits with 130. A second Ctrl-C ends it at once.
"""
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(doc, "utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())
