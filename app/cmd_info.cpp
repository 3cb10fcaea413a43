// `tolk info`: prints config (as tolk resolved it), parameter count, and every stored tensor with dtype and shape.
#include "cmd_info.h"

#include <cstdio>
#include <memory>

#include "app_common.h"
#include "core/tensor.h"
#include "dnnl/compute_type.h"
#include "dnnl/context.h"
#include "model/config.h"
#include "model/safetensors.h"
#include "model/weights.h"

namespace tolk {

namespace {

struct InfoOptions {
    ModelChoice model;
};

std::string with_thousands(int64_t n) {
    std::string digits = std::to_string(n), out;
    for (size_t i = 0; i < digits.size(); ++i) {
        if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
        out += digits[i];
    }
    return out;
}

int run_info(const InfoOptions& options) {
    const auto dir = resolve_model_dir(options.model);
    ModelConfig config;
    std::unique_ptr<SafeTensorsFile> file;
    std::unique_ptr<WeightStore> weights;
    try {
        config = load_config(dir);
        weights = std::make_unique<WeightStore>(WeightStore::load(dir, config));
        file = std::make_unique<SafeTensorsFile>(dir / "model.safetensors");
    } catch (const Error& e) {
        throw UsageError(e.what());
    }
    std::printf("model: %s\n", dir.string().c_str());
    // The instruction set oneDNN runs on here (ONEDNN_MAX_CPU_ISA lowers it), which decides its kernels.
    std::printf("cpu: oneDNN ISA %s\n", cpu_isa_name().c_str());
    std::string types;
    for (ComputeType t : {ComputeType::float32, ComputeType::int8, ComputeType::bfloat16, ComputeType::int8_bfloat16})
        if (compute_type_supported(t)) types += std::string(types.empty() ? "" : ", ") + compute_type_name(t);
    std::printf("compute types: %s (auto: %s)\n", types.c_str(), compute_type_name(auto_compute_type()));
    std::printf("config:\n%s\n", config.to_json().c_str());
    std::printf("parameters: %s\n", with_thousands(weights->parameter_count()).c_str());
    const auto names = file->names();
    std::printf("tensors: %zu stored in model.safetensors\n", names.size());
    size_t width = 0;
    for (const auto& name : names) width = std::max(width, name.size());
    for (const auto& name : names) {
        const TensorInfo& info = file->info(name);
        std::printf("  %-*s  %-4s  %s\n", static_cast<int>(width), name.c_str(), dtype_name(info.dtype),
                    shape_str(info.shape).c_str());
    }
    std::vector<std::string> tied;
    for (const auto& name : weights->names())
        if (weights->stored_name(name) != name) tied.push_back(name + " -> " + weights->stored_name(name));
    if (!tied.empty()) {
        std::printf("tied (not stored, shared with another tensor):\n");
        for (const auto& line : tied) std::printf("  %s\n", line.c_str());
    }
    std::fflush(stdout);
    return kExitOk;
}

}  // namespace

std::function<int()> add_info_command(CLI::App& app) {
    auto options = std::make_shared<InfoOptions>();
    CLI::App* cmd = app.add_subcommand("info", "Show a model's configuration, parameter count and tensors");
    cmd->add_option("-m,--model", options->model.model, "Model directory (Hugging Face MarianMT layout) or name")->type_name("DIR");
    cmd->add_option("--from", options->model.from, "Pick the model by source language")->type_name("LANG");
    cmd->add_option("--to", options->model.to, "Pick the model by target language")->type_name("LANG");
    cmd->footer("Example:\n  tolk info -m models/en-de");
    return [cmd, options] { return cmd->parsed() ? run_info(*options) : -1; };
}

}  // namespace tolk
