// `tolk translate`: option checks, input/output setup, model loading, then the pipeline; maps failures to the
// documented exit codes (2: a user mistake found before translating; 1: a failure while translating).
#include "cmd_translate.h"

#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <thread>

#include "app_common.h"
#include "model/config.h"
#include "pipeline/corpus.h"
#include "pipeline/file_io.h"
#include "pipeline/interrupt.h"
#include "pipeline/marian_engine.h"
#include "pipeline/model_registry.h"
#include "pipeline/resume_state.h"

namespace tolk {

namespace fs = std::filesystem;

namespace {

struct TranslateOptions {
    ModelChoice model;
    std::vector<std::string> texts;
    std::vector<std::string> inputs;
    std::string output;
    std::string output_dir;
    std::string format = "text";
    std::string input_format = "auto";
    int beam = 0;  // 0: not given, the model's num_beams
    int max_new_tokens = 0;
    int nbest = 1;
    bool scores = false;
    bool tokens = false;
    int threads = 0;
    int workers = 0;
    std::string compute_type = "float32";
    int max_batch_tokens = 4096;
    int batch_size = 32;
    bool no_split = false;
    bool unbuffered = false;
    bool quiet = false;
    bool summary = false;
    bool beam_given = false;
    bool resume = false;    // --resume: checkpoint -o FILE and continue an interrupted run of the same job
    std::string shard;      // --shard K/N
    int window = 0;         // --window: lines sorted and batched together (0: automatic)
    int cache_mb = 64;      // --cache-mb: memory for translations of repeated sentences
    bool no_cache = false;  // --no-cache
};

// The single input file of a --resume or --shard job: exactly one -i FILE, not stdin, and no TEXT arguments.
void check_single_input(const TranslateOptions& o, const std::string& option) {
    if (!o.texts.empty()) throw UsageError(option + " works on an input file (-i FILE), not on TEXT arguments");
    if (o.inputs.size() != 1 || o.inputs[0] == "-")
        throw UsageError(option + " needs exactly one input file (-i FILE); stdin cannot be " +
                         (option == "--resume" ? "resumed" : "split into shards"));
    if (!o.output_dir.empty()) throw UsageError(option + " writes one output: use -o FILE, not --output-dir");
}

// Limits of the options that size allocations or threads, far above useful values.
constexpr int kMaxThreads = 1024;      // oneDNN threads per worker
constexpr int kMaxWorkers = 1024;      // worker threads, each with its own session
constexpr int kMaxBatchTokens = 1 << 20;
constexpr int kMaxBatchSize = 1 << 16;

void check_at_most(int value, const char* option, int limit) {
    if (value > limit)
        throw UsageError(std::string(option) + ": " + std::to_string(value) + " is larger than the limit of " +
                         std::to_string(limit));
}

void check_positive(int value, const char* option, bool zero_ok = false) {
    if (value < 0 || (value == 0 && !zero_ok))
        throw UsageError(std::string(option) + ": expected a " + (zero_ok ? "non-negative" : "positive") +
                         " number, got " + std::to_string(value));
}

// Threads per worker and workers. Measured on the shipped en-de model (2 cores, 1,500 dev lines): 2 workers x
// 1 thread give 2,520 target tokens/s, 1 worker x 2 threads 1,400: a decoder step on a batch of short sentences is
// too small to split well across threads, while independent batches scale almost linearly and share the weights.
// So corpora get one single-threaded worker per core; a single line or an interactive session has one batch at a
// time and gets up to 4 threads.
std::pair<int, int> thread_plan(const TranslateOptions& o, bool corpus) {
    const int cores = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
    int workers = o.workers;
    int threads = o.threads;
    if (workers == 0) workers = corpus ? std::max(1, cores / std::max(threads, 1)) : 1;
    if (threads == 0) threads = corpus ? std::max(1, cores / workers) : std::min(cores, 4);
    return {threads, workers};
}

Format input_format_for(const TranslateOptions& o, const std::string& path) {
    if (o.input_format != "auto") return parse_format(o.input_format, "--input-format");
    return path.size() > 6 && path.compare(path.size() - 6, 6, ".jsonl") == 0 ? Format::jsonl : Format::text;
}

int run_translate(const TranslateOptions& o) {
    // 1. Options (exit 2 on any mistake, before anything is read or written).
    if (o.beam_given) check_positive(o.beam, "--beam");
    check_positive(o.max_new_tokens, "--max-new-tokens", true);
    check_positive(o.nbest, "--nbest");
    check_positive(o.threads, "--threads", true);
    check_positive(o.workers, "--workers", true);
    check_positive(o.max_batch_tokens, "--max-batch-tokens");
    check_positive(o.batch_size, "--batch-size");
    // Upper bounds, before anything is allocated (a beam of 2^31-1 or 100,000 workers must not be tried).
    check_at_most(o.beam, "--beam", kMaxBeam);
    check_at_most(o.nbest, "--nbest", kMaxBeam);
    check_at_most(o.threads, "--threads", kMaxThreads);
    check_at_most(o.workers, "--workers", kMaxWorkers);
    check_at_most(o.max_batch_tokens, "--max-batch-tokens", kMaxBatchTokens);
    check_at_most(o.batch_size, "--batch-size", kMaxBatchSize);
    if (o.beam > 0 && o.nbest > o.beam)
        throw UsageError("--nbest " + std::to_string(o.nbest) + " is larger than --beam " + std::to_string(o.beam));
    if (!o.texts.empty() && !o.inputs.empty())
        throw UsageError("give TEXT arguments or -i/--input files, not both");
    if (!o.output_dir.empty() && o.inputs.empty())
        throw UsageError("--output-dir needs input files (-i FILE...)");
    OutputOptions output_options;
    output_options.format = parse_format(o.format, "--format");
    output_options.scores = o.scores;
    output_options.nbest = o.nbest;
    output_options.tokens = o.tokens;
    if (o.tokens && output_options.format != Format::jsonl) throw UsageError("--tokens needs --format jsonl");
    if (o.input_format != "auto") parse_format(o.input_format, "--input-format");
    if (o.input_format == "tsv") throw UsageError("--input-format: expected text or jsonl, got tsv");
    check_positive(o.window, "--window", true);
    check_positive(o.cache_mb, "--cache-mb", true);
    if (o.resume) {
        check_single_input(o, "--resume");
        if (o.output.empty() || o.output == "-") throw UsageError("--resume needs an output file (-o FILE)");
    }
    std::optional<Shard> shard;
    if (!o.shard.empty()) {
        check_single_input(o, "--shard");
        try {
            shard = parse_shard(o.shard);
        } catch (const Error& e) {
            throw UsageError(e.what());
        }
    }
    ComputeType compute = ComputeType::float32;
    try {
        compute = compute_type_from_name(o.compute_type);
    } catch (const Error& e) {
        throw UsageError(std::string("--compute-type: ") + e.what());
    }
    if (std::string why; !compute_type_supported(compute, &why))
        throw UsageError("--compute-type " + o.compute_type + ": " + why);

    // Ctrl-C from here on stops the run cleanly (temporary output files removed) instead of killing it.
    install_interrupt_handler();

    // 2. Inputs: all opened now, so a missing file fails before any work.
    std::vector<std::unique_ptr<LineReader>> readers;
    const bool from_stdin = o.texts.empty() && o.inputs.empty();
    const std::vector<std::string> input_paths = from_stdin ? std::vector<std::string>{"-"} : o.inputs;
    if (o.texts.empty()) {
        std::set<std::string> names;
        for (const auto& path : input_paths) {
            try {
                readers.push_back(std::make_unique<LineReader>(path));
            } catch (const Error& e) {
                // `tolk -i a.txt "Hello."`: -i takes every following argument as a file.
                std::error_code missing_ec;
                const bool missing = path != "-" && !fs::exists(fs::symlink_status(path, missing_ec));
                throw UsageError(std::string("-i ") + e.what() +
                                 (missing && &path != &input_paths.front()
                                      ? " (-i takes every following argument as an input file; TEXT arguments "
                                        "cannot be combined with -i)"
                                      : ""));
            }
            if (!o.output_dir.empty()) {
                if (path == "-") throw UsageError("--output-dir: stdin ('-') has no file name to write to");
                if (!names.insert(fs::path(path).filename().string()).second)
                    throw UsageError("--output-dir: two inputs are named " + fs::path(path).filename().string());
            }
        }
    }
    const bool interactive = !readers.empty() && input_paths.size() == 1 && readers[0]->is_terminal();
    const bool corpus = o.texts.empty() && !interactive;

    // 3. Outputs: never the same file as an input; created as temporary files, renamed into place when complete.
    std::error_code ec;
    const auto same_as_input = [&](const fs::path& out) {
        for (const auto& in : input_paths)
            if (in != "-" && fs::equivalent(in, out, ec)) return true;
        return false;
    };
    std::unique_ptr<AtomicFile> single_output;
    if (!o.output.empty() && !o.output_dir.empty()) throw UsageError("give -o/--output or --output-dir, not both");
    if (!o.output.empty() && o.output != "-") {
        if (same_as_input(o.output)) throw UsageError("-o " + o.output + ": is also an input file");
    }
    if (!o.output.empty() && o.output != "-" && !o.resume) {  // --resume: a ResumableOutput, once the model is known
        try {
            single_output = std::make_unique<AtomicFile>(o.output);
        } catch (const Error& e) {
            throw UsageError(std::string("-o ") + e.what());
        }
    }
    if (!o.output_dir.empty()) {
        fs::create_directories(o.output_dir, ec);
        if (!fs::is_directory(o.output_dir) || ::access(o.output_dir.c_str(), W_OK) != 0)
            throw UsageError("--output-dir " + o.output_dir + ": cannot write there");
        for (const auto& in : input_paths)
            if (same_as_input(fs::path(o.output_dir) / fs::path(in).filename()))
                throw UsageError("--output-dir " + o.output_dir + ": would overwrite the input " + in);
    }

    // 4. The model (a bad directory is a user mistake: exit 2).
    const fs::path model_dir = resolve_model_dir(o.model);
    const auto [threads, workers] = thread_plan(o, corpus);
    std::unique_ptr<MarianEngine> engine;
    EngineOptions engine_options;
    engine_options.decode.beam_size = o.beam;
    engine_options.decode.max_new_tokens = o.max_new_tokens;
    engine_options.decode.nbest = o.nbest;
    engine_options.tokens = o.tokens;
    engine_options.threads = threads;
    engine_options.compute = compute;
    // Decoder caches may hold twice the batch's source token budget per beam (outputs up to twice as long as
    // their sources); a batch of several sentences that needs more is split (issue #9: junk input).
    engine_options.decoder_positions_per_beam = 2 * static_cast<int64_t>(o.max_batch_tokens);
    try {
        engine = MarianEngine::load(model_dir, engine_options);
    } catch (const Error& e) {
        throw UsageError(e.what());
    }
    if (o.nbest > engine->settings().beam_size)
        throw UsageError("--nbest " + std::to_string(o.nbest) + " is larger than the beam size " +
                         std::to_string(engine->settings().beam_size) + " (raise --beam)");

    // 4b. A shard or a resumable job: the input's lines (and identity), this job's range, the checkpoint.
    int64_t job_begin = 0, job_lines = -1;  // input lines [job_begin, job_begin + job_lines); -1: all
    std::unique_ptr<ResumableOutput> resumable;
    if (shard || o.resume) {
        FileScan scan;
        try {
            scan = scan_file(input_paths[0]);
        } catch (const Error& e) {
            throw UsageError(std::string("-i ") + e.what());
        }
        job_begin = shard ? shard->begin(scan.lines) : 0;
        job_lines = (shard ? shard->end(scan.lines) : scan.lines) - job_begin;
        if (o.resume) {
            // Everything that changes the output bytes; batching, workers, threads and the cache do not: a sentence
            // is computed on its own whatever shares its batch, and padding adds exact zeros to its sums.
            const nlohmann::json job = {
                {"input", {{"path", fs::absolute(input_paths[0]).lexically_normal().string()},
                           {"size", scan.size},
                           {"hash", hash_hex(scan.hash)}}},
                {"model", model_identity(model_dir)},
                {"options",
                 {{"--beam", engine->settings().beam_size},
                  {"--max-new-tokens", engine->settings().max_new_tokens},
                  {"--nbest", o.nbest},
                  {"--scores", o.scores},
                  {"--tokens", o.tokens},
                  {"--format", o.format},
                  {"--input-format", std::string(format_name(input_format_for(o, input_paths[0])))},
                  {"--no-split", o.no_split},
                  {"--compute-type", std::string(compute_type_name(compute))},
                  {"--shard", shard ? o.shard : "none"}}}};
            try {
                resumable = std::make_unique<ResumableOutput>(o.output, job);
            } catch (const Error& e) {
                throw UsageError(std::string("--resume: -o ") + e.what());
            }
        }
    }

    // 5. Translate. From here on a failure is not the user's: exit 1 (temporary outputs are removed).
    try {
        TranslatorOptions translator_options;
        translator_options.limits = {o.max_batch_tokens, o.batch_size};
        translator_options.workers = workers;
        translator_options.threads = threads;
        translator_options.split_sentences = !o.no_split;
        translator_options.cache_bytes = o.no_cache ? 0 : static_cast<size_t>(o.cache_mb) << 20;
        translator_options.source_language =
            engine->config().source_lang.empty() ? "en" : engine->config().source_lang;
        // Workers that cannot start (a process limit, memory) are a setting the user can change: exit 2.
        std::unique_ptr<Translator> translator_ptr;
        try {
            translator_ptr = std::make_unique<Translator>(*engine, translator_options);
        } catch (const Error& e) {
            throw UsageError(e.what());
        }
        Translator& translator = *translator_ptr;

        const bool stderr_tty = ::isatty(STDERR_FILENO) == 1;
        ProgressOptions progress_options;
        progress_options.live = corpus && stderr_tty && !o.quiet;
        progress_options.summary = !o.quiet && ((corpus && stderr_tty) || o.summary);
        Progress progress(progress_options);
        for (const auto& r : readers) r->set_warning_handler([&progress](const std::string& m) { progress.warn(m); });
        if (job_lines >= 0) {
            progress.set_total_lines(job_lines);  // a shard counts its own lines; a resumed job all of them
            if (shard) progress.set_label("shard " + o.shard);
        } else if (progress_options.live) {
            int64_t total = 0;
            bool known = true;
            for (const auto& r : readers) {
                const auto n = r->count_lines();
                known = known && n.has_value();
                total += n.value_or(0);
            }
            if (known) progress.set_total_lines(total);
        }
        if (interactive && stderr_tty && !o.quiet)
            std::fprintf(stderr, "tolk: %s ready; type a line and press Enter (Ctrl-D ends)\n",
                         model_dir.filename().string().c_str());
        const int64_t lines_before = resumable ? resumable->lines_done() : 0;
        progress.start(translator.stats(), lines_before);

        StreamOptions stream_options;
        stream_options.output = output_options;
        stream_options.unbuffered = o.unbuffered || interactive;
        stream_options.window_lines = static_cast<size_t>(o.window);
        if (job_lines >= 0) {
            stream_options.skip_lines = job_begin + lines_before;
            stream_options.max_lines = job_lines - lines_before;
        }
        if (resumable)
            stream_options.on_written = [&](int64_t written) { resumable->checkpoint(lines_before + written); };
        std::ostream& stdout_stream = std::cout;
        StreamTotals totals;
        if (!o.texts.empty()) {
            std::ostream& out = single_output ? single_output->stream() : stdout_stream;
            totals = translate_texts(translator, o.texts, out, stream_options, progress);
        } else {
            for (size_t i = 0; i < readers.size() && !totals.interrupted; ++i) {
                stream_options.input_format = input_format_for(o, input_paths[i]);
                std::unique_ptr<AtomicFile> per_file;
                if (!o.output_dir.empty()) {
                    try {
                        per_file = std::make_unique<AtomicFile>(fs::path(o.output_dir) /
                                                                fs::path(input_paths[i]).filename());
                    } catch (const Error& e) {
                        print_error(std::string("--output-dir ") + e.what());
                        return kExitUsage;
                    }
                }
                std::ostream& out = per_file       ? per_file->stream()
                                    : resumable     ? resumable->stream()
                                    : single_output ? single_output->stream()
                                                    : stdout_stream;
                const StreamTotals t = translate_stream(translator, *readers[i], out, stream_options, progress,
                                                        lines_before + totals.lines_written);
                totals.lines_read += t.lines_read;
                totals.lines_written += t.lines_written;
                totals.interrupted = t.interrupted;
                if (per_file && !t.interrupted) per_file->commit();
            }
        }
        stdout_stream.flush();
        progress.finish(translator.stats(), lines_before + totals.lines_written);
        if ((totals.interrupted || interrupted()) && resumable) {
            std::fprintf(stderr, "tolk: interrupted after %lld of %lld lines; progress is kept in %s, run the same "
                                 "command with --resume to continue\n",
                         static_cast<long long>(lines_before + totals.lines_written),
                         static_cast<long long>(job_lines), resumable->partial_path().string().c_str());
            return kExitInterrupted;
        }
        if (totals.interrupted || interrupted()) {
            std::fprintf(stderr, "tolk: interrupted after %lld complete lines%s\n",
                         static_cast<long long>(totals.lines_written),
                         single_output || !o.output_dir.empty() ? "; the unfinished output file was removed" : "");
            return kExitInterrupted;
        }
        if (single_output) single_output->commit();
        if (resumable) resumable->commit();
        if (!stdout_stream) {
            print_error("cannot write to stdout");
            return kExitInternal;
        }
        return kExitOk;
    } catch (const UsageError& e) {
        print_error(e.what());
        return kExitUsage;
    } catch (const std::exception& e) {
        print_error(e.what());
        return kExitInternal;
    }
}

}  // namespace

std::function<int()> add_translate_command(CLI::App& app) {
    auto o = std::make_shared<TranslateOptions>();
    CLI::App* cmd = app.add_subcommand("translate", "Translate text arguments, stdin or files (the default command)");
    cmd->add_option("text", o->texts, "Text to translate; each argument gives one output line")->type_name("TEXT");
    cmd->add_option("-m,--model", o->model.model,
                    "Model directory (Hugging Face MarianMT layout) or a model name from `tolk models`; "
                    "default: $TOLK_MODEL, else the shipped en-de model")
        ->type_name("DIR");
    cmd->add_option("--from", o->model.from, "Pick the model by source language (see `tolk models`)")->type_name("LANG");
    cmd->add_option("--to", o->model.to, "Pick the model by target language")->type_name("LANG");
    cmd->add_option("-i,--input", o->inputs, "Input files, one sentence or paragraph per line ('-': stdin)")
        ->type_name("FILE");
    cmd->add_option("-o,--output", o->output, "Output file, written atomically (default: stdout)")->type_name("FILE");
    cmd->add_option("--output-dir", o->output_dir, "Write each input file's translation to DIR/<its name>")
        ->type_name("DIR");
    cmd->add_option("--format", o->format, "Output format: text, jsonl or tsv (source<TAB>translation)")
        ->type_name("FMT")
        ->capture_default_str();
    cmd->add_option("--input-format", o->input_format,
                    "Input format: text, jsonl ({\"id\": ..., \"text\": ...}) or auto (jsonl for *.jsonl files)")
        ->type_name("FMT")
        ->capture_default_str();
    cmd->add_option("--beam", o->beam, "Beam size (default: the model's num_beams; 1: greedy)")->type_name("N");
    cmd->add_option("--max-new-tokens", o->max_new_tokens,
                    "Most tokens generated per sentence (default: the model's limit)")
        ->type_name("N");
    cmd->add_option("--nbest", o->nbest, "Print the N best translations with scores")
        ->type_name("N")
        ->capture_default_str();
    cmd->add_flag("--scores", o->scores, "Print scores (text: \"N ||| translation ||| score\")");
    cmd->add_flag("--tokens", o->tokens, "With --format jsonl: add the target tokens");
    cmd->add_option("--threads", o->threads,
                    "oneDNN threads per worker (default: 1 on corpora; up to 4 for a single line or interactive use)")
        ->type_name("N");
    cmd->add_option("--workers", o->workers, "Batches translated in parallel, sharing one copy of the weights "
                                             "(default on corpora: one per core; else 1)")
        ->type_name("N");
    cmd->add_option("--compute-type", o->compute_type,
                    "Matmul precision: float32 (the reference's numbers), int8, bfloat16, int8_bfloat16, or auto "
                    "(the fastest this CPU runs well: see tolk info)")
        ->type_name("TYPE")
        ->capture_default_str();
    cmd->add_option("--max-batch-tokens", o->max_batch_tokens, "Token budget per batch (rows x longest row)")
        ->type_name("N")
        ->capture_default_str();
    cmd->add_option("--batch-size", o->batch_size, "Most sentences per batch")->type_name("N")->capture_default_str();
    cmd->add_flag("--no-split", o->no_split, "Translate each line as one sentence (no sentence splitting)");
    cmd->add_flag("--unbuffered", o->unbuffered,
                  "Translate and flush each line as it arrives (automatic when stdin is a terminal)");
    cmd->add_flag("-q,--quiet", o->quiet, "No progress line and no summary (warnings still show)");
    cmd->add_flag("--summary", o->summary, "Print the end summary even when stderr is not a terminal");
    cmd->add_flag("--resume", o->resume,
                  "With -i FILE -o FILE: save progress after each window and continue an interrupted run of the same "
                  "command (progress in .FILE.tolk-partial and .FILE.tolk-resume next to the output)");
    cmd->add_option("--shard", o->shard,
                    "Translate only part K of N of the input file (contiguous, by line count; the outputs of 1..N "
                    "concatenated are the whole output)")
        ->type_name("K/N");
    cmd->add_option("--window", o->window,
                    "Lines read, sorted and batched together (default: 16 batches per worker); with --resume, "
                    "progress is saved after each window")
        ->type_name("N");
    cmd->add_option("--cache-mb", o->cache_mb,
                    "Memory for translations of repeated sentences, each distinct sentence translated once")
        ->type_name("MB")
        ->capture_default_str();
    cmd->add_flag("--no-cache", o->no_cache, "Translate every occurrence of a repeated sentence (same output)");
    cmd->footer(
        "Examples:\n"
        "  tolk \"The weather is nice today.\"         translate arguments, one output line each\n"
        "  echo \"Good morning.\" | tolk               translate stdin, one output line per input line\n"
        "  tolk -i book.txt -o book.de.txt           translate a file (written atomically)\n"
        "  tolk -i a.txt b.txt --output-dir out/     one output file per input file\n"
        "  tolk --format tsv -i sentences.txt        source<TAB>translation\n"
        "  tolk --format jsonl --scores < in.txt     {\"id\": N, \"translation\": ..., \"score\": ...}\n"
        "  tolk --nbest 3 \"How are you?\"             alternatives: N ||| translation ||| score\n"
        "  tolk --from en --to de -i notes.txt       pick the model by language pair\n"
        "  producer | tolk --unbuffered | consumer   answer each line as soon as it arrives\n"
        "  tolk -i big.en -o big.de --resume         rerun the same command after an interruption to continue\n"
        "  tolk -i big.en -o big.de.2 --shard 2/4    the 2nd of 4 parts; cat big.de.{1..4} > big.de\n"
        "Lines with several sentences are split (ICU) and rejoined; empty lines stay empty; invalid UTF-8 is\n"
        "replaced by U+FFFD with a warning; a line longer than 1 MiB is cut there, with a warning naming it.\n"
        "Progress and summary go to stderr, only when it is a terminal. -o onto a device or FIFO writes\n"
        "through it, onto a symlink replaces the file it points to (mode and owner kept), never the link.\n"
        "Exit codes: 0 ok, 1 internal error, 2 usage error (bad option, missing input, unwritable output,\n"
        "bad model directory), 130 interrupted (Ctrl-C: complete lines flushed, no partial -o file left).");
    return [cmd, o] {
        if (!cmd->parsed()) return -1;
        o->beam_given = cmd->count("--beam") > 0;
        return run_translate(*o);
    };
}

}  // namespace tolk
