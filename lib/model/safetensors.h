// SafeTensorsFile: a memory-mapped .safetensors file whose header is fully validated on open;
// tensors are converted to f32 on request.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace tolk {

struct TensorInfo {
    DType dtype = DType::f32;  // as stored: F32, F16 or BF16
    Shape shape;
    std::size_t begin = 0;  // byte offsets into the data section (after the header)
    std::size_t end = 0;
};

// The header checks of SafeTensorsFile on a whole file's bytes in memory: fills `infos` and `metadata` and returns
// the offset of the data section. Throws tolk::Error naming `file` (the constructor and the fuzzer use it).
std::size_t parse_safetensors_header(const unsigned char* data, std::size_t size, const std::string& file,
                                     std::map<std::string, TensorInfo>& infos,
                                     std::map<std::string, std::string>& metadata);

class SafeTensorsFile {
public:
    // Maps the file and validates the header: length inside the file, valid JSON, every entry with a known dtype,
    // a shape and data_offsets inside the data section, no overlaps, byte size = numel * dtype size.
    explicit SafeTensorsFile(const std::filesystem::path& path);
    ~SafeTensorsFile();
    SafeTensorsFile(SafeTensorsFile&& other) noexcept;
    SafeTensorsFile& operator=(SafeTensorsFile&& other) noexcept;
    SafeTensorsFile(const SafeTensorsFile&) = delete;
    SafeTensorsFile& operator=(const SafeTensorsFile&) = delete;

    const std::filesystem::path& path() const { return path_; }
    std::vector<std::string> names() const;  // sorted
    bool contains(const std::string& name) const { return infos_.count(name) != 0; }
    const TensorInfo& info(const std::string& name) const;  // throws naming file and tensor when absent
    const std::map<std::string, std::string>& metadata() const { return metadata_; }

    // A fresh f32 copy of the tensor (F16 and BF16 are converted).
    Tensor load_f32(const std::string& name) const;

private:
    void unmap();
    void read_exactly(unsigned char* target, std::size_t bytes, off_t offset, const std::string& name) const;

    std::filesystem::path path_;
    int fd_ = -1;                         // tensor data is read from here
    const unsigned char* map_ = nullptr;  // the whole file (the header is parsed from it)
    std::size_t map_size_ = 0;
    std::size_t data_start_ = 0;  // 8 + header length
    std::map<std::string, TensorInfo> infos_;
    std::map<std::string, std::string> metadata_;
};

}  // namespace tolk
