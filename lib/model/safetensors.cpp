// SafeTensorsFile: POSIX mmap of a .safetensors file, header validation, conversion to f32.
#include "model/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <limits>
#include <utility>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "model/json_file.h"

namespace tolk {
namespace {

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian");

using nlohmann::json;

bool parse_dtype(const std::string& name, DType& out) {
    if (name == "F32") out = DType::f32;
    else if (name == "F16") out = DType::f16;
    else if (name == "BF16") out = DType::bf16;
    else return false;
    return true;
}

// A non-negative integer that fits in size_t, or throws with the tensor's and field's names.
std::size_t to_size(const json& v, const std::string& where, const char* field) {
    TOLK_CHECK(v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0), where, ": ", field,
               " must hold non-negative integers, got ", json_excerpt(v));
    return v.get<std::size_t>();
}

}  // namespace

std::size_t parse_safetensors_header(const unsigned char* data, std::size_t size, const std::string& file,
                                     std::map<std::string, TensorInfo>& infos,
                                     std::map<std::string, std::string>& metadata) {
    TOLK_CHECK(size >= 8, file, ": truncated: ", size, " bytes, a safetensors file starts with an 8-byte header length");
    std::size_t data_start = 0;
    uint64_t header_len = 0;
    std::memcpy(&header_len, data, 8);
    TOLK_CHECK(header_len <= size - 8, file, ": header length ", header_len, " runs past the end of the file (",
               size, " bytes)");
    TOLK_CHECK(header_len <= kMaxSafetensorsHeaderBytes, file, ": header length ", header_len,
               " is larger than the limit of ", kMaxSafetensorsHeaderBytes, " bytes");
    data_start = 8 + static_cast<std::size_t>(header_len);
    const std::size_t data_size = size - data_start;

    const json header =
        parse_json(std::string_view(reinterpret_cast<const char*>(data + 8), data_start - 8), file, "JSON header");
    TOLK_CHECK(header.is_object(), file, ": header must be a JSON object, got ", json_excerpt(header));

    for (const auto& [name, entry] : header.items()) {
        if (name == "__metadata__") {
            TOLK_CHECK(entry.is_object(), file, ": __metadata__ must be an object, got ", json_excerpt(entry));
            for (const auto& [key, value] : entry.items())
                metadata[key] = value.is_string() ? value.get<std::string>() : value.dump();
            continue;
        }
        const std::string where = file + ": tensor '" + name + "'";
        TOLK_CHECK(entry.is_object(), where, ": entry must be an object, got ", json_excerpt(entry));
        for (const char* key : {"dtype", "shape", "data_offsets"})
            TOLK_CHECK(entry.contains(key), where, ": missing '", key, "'");

        TensorInfo info;
        const json& dtype = entry["dtype"];
        TOLK_CHECK(dtype.is_string(), where, ": dtype must be a string, got ", json_excerpt(dtype));
        TOLK_CHECK(parse_dtype(dtype.get<std::string>(), info.dtype), where, ": unsupported dtype ",
                   dtype.get<std::string>(), " (tolk loads F32, F16 and BF16)");

        const json& shape = entry["shape"];
        TOLK_CHECK(shape.is_array(), where, ": shape must be an array, got ", json_excerpt(shape));
        std::size_t numel = 1;
        for (const json& d : shape) {
            std::size_t n = to_size(d, where, "shape");
            TOLK_CHECK(n <= static_cast<std::size_t>(std::numeric_limits<int64_t>::max()) &&
                           (n == 0 || numel <= std::numeric_limits<std::size_t>::max() / n),
                       where, ": shape ", shape.dump(), " is too large");
            numel *= n;
            info.shape.push_back(static_cast<int64_t>(n));
        }

        const json& offsets = entry["data_offsets"];
        TOLK_CHECK(offsets.is_array() && offsets.size() == 2, where,
                   ": data_offsets must be [begin, end], got ", json_excerpt(offsets));
        info.begin = to_size(offsets[0], where, "data_offsets");
        info.end = to_size(offsets[1], where, "data_offsets");
        TOLK_CHECK(info.begin <= info.end, where, ": data_offsets [", info.begin, ",", info.end,
                   "] end before they begin");
        TOLK_CHECK(info.end <= data_size, where, ": data_offsets [", info.begin, ",", info.end,
                   "] lie outside the data section of ", data_size, " bytes");
        const std::size_t elem = dtype_size(info.dtype);
        TOLK_CHECK(numel <= std::numeric_limits<std::size_t>::max() / elem &&
                       info.end - info.begin == numel * elem,
                   where, ": ", info.end - info.begin, " bytes do not hold shape ", shape_str(info.shape), " of ",
                   dtype_name(info.dtype), " (", numel * elem, " bytes)");
        infos.emplace(name, std::move(info));
    }

    // No two tensors may share bytes: sort by begin and compare neighbours (empty tensors overlap nothing).
    std::vector<std::pair<const std::string*, const TensorInfo*>> spans;
    for (const auto& [name, info] : infos)
        if (info.end > info.begin) spans.emplace_back(&name, &info);
    std::sort(spans.begin(), spans.end(), [](const auto& a, const auto& b) { return a.second->begin < b.second->begin; });
    for (std::size_t i = 1; i < spans.size(); ++i) {
        const auto& [prev_name, prev] = spans[i - 1];
        const auto& [name, cur] = spans[i];
        TOLK_CHECK(cur->begin >= prev->end, file, ": tensors '", *prev_name, "' [", prev->begin, ",", prev->end,
                   "] and '", *name, "' [", cur->begin, ",", cur->end, "] overlap");
    }
    return data_start;
}

SafeTensorsFile::SafeTensorsFile(const std::filesystem::path& path) : path_(path) {
    const std::string file = path.string();
    // Regular files only: mapping /dev/zero or waiting on a FIFO must not happen.
    const RegularFile f = open_regular_file(path);
    const int fd = f.fd;
    const std::size_t file_size = f.size;
    if (file_size < 8) {
        ::close(fd);
        TOLK_FAIL(file, ": truncated: ", file_size, " bytes, a safetensors file starts with an 8-byte header length");
    }
    void* map = ::mmap(nullptr, file_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
        const int err = errno;
        ::close(fd);
        TOLK_FAIL(file, ": mmap failed: ", std::strerror(err));
    }
    // The header is read through the mapping; tensor data through the descriptor (see load_f32).
    fd_ = fd;
    map_ = static_cast<const unsigned char*>(map);
    map_size_ = file_size;

    try {
        data_start_ = parse_safetensors_header(map_, map_size_, file, infos_, metadata_);
    } catch (...) {
        unmap();
        throw;
    }
}

SafeTensorsFile::~SafeTensorsFile() { unmap(); }

SafeTensorsFile::SafeTensorsFile(SafeTensorsFile&& other) noexcept
    : path_(std::move(other.path_)),
      fd_(std::exchange(other.fd_, -1)),
      map_(std::exchange(other.map_, nullptr)),
      map_size_(std::exchange(other.map_size_, 0)),
      data_start_(other.data_start_),
      infos_(std::move(other.infos_)),
      metadata_(std::move(other.metadata_)) {}

SafeTensorsFile& SafeTensorsFile::operator=(SafeTensorsFile&& other) noexcept {
    if (this != &other) {
        unmap();
        path_ = std::move(other.path_);
        fd_ = std::exchange(other.fd_, -1);
        map_ = std::exchange(other.map_, nullptr);
        map_size_ = std::exchange(other.map_size_, 0);
        data_start_ = other.data_start_;
        infos_ = std::move(other.infos_);
        metadata_ = std::move(other.metadata_);
    }
    return *this;
}

void SafeTensorsFile::unmap() {
    if (map_) ::munmap(const_cast<unsigned char*>(map_), map_size_);
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    map_ = nullptr;
    map_size_ = 0;
}

std::vector<std::string> SafeTensorsFile::names() const {
    std::vector<std::string> out;
    for (const auto& [name, info] : infos_) out.push_back(name);
    return out;
}

const TensorInfo& SafeTensorsFile::info(const std::string& name) const {
    auto it = infos_.find(name);
    TOLK_CHECK(it != infos_.end(), path_.string(), ": no tensor '", name, "'");
    return it->second;
}

Tensor SafeTensorsFile::load_f32(const std::string& name) const {
    const TensorInfo& ti = info(name);
    Tensor out;  // not zero-filled first: every element is written below
    out.resize(ti.shape);
    float* dst = out.f32();
    const int64_t n = out.numel();
    const std::size_t elem = dtype_size(ti.dtype);
    // Read with pread through one small buffer rather than through the mapping: on virtual machines a page fault
    // costs ~12 us (measured here), and faulting in the mapped file cost ~40 ms of a 0.3 s cold start; copying
    // from the page cache costs a fraction of that. The buffer is a whole number of elements.
    constexpr std::size_t kChunk = 64 * 1024;
    alignas(64) unsigned char chunk[kChunk];
    std::size_t done = 0;  // elements
    const std::size_t total = static_cast<std::size_t>(n);
    while (done < total) {
        const std::size_t count = std::min(total - done, kChunk / elem);
        const auto offset = static_cast<off_t>(data_start_ + ti.begin + done * elem);
        unsigned char* target = ti.dtype == DType::f32 ? reinterpret_cast<unsigned char*>(dst + done) : chunk;
        read_exactly(target, count * elem, offset, name);
        if (ti.dtype == DType::f16) f16_to_f32_n(chunk, dst + done, static_cast<int64_t>(count));
        else if (ti.dtype == DType::bf16) bf16_to_f32_n(chunk, dst + done, static_cast<int64_t>(count));
        done += count;
    }
    return out;
}

void SafeTensorsFile::read_exactly(unsigned char* target, std::size_t bytes, off_t offset,
                                   const std::string& name) const {
    while (bytes > 0) {
        const ssize_t got = ::pread(fd_, target, bytes, offset);
        if (got < 0 && errno == EINTR) continue;
        TOLK_CHECK(got >= 0, path_.string(), ": cannot read tensor '", name, "': ", std::strerror(errno));
        TOLK_CHECK(got > 0, path_.string(), ": tensor '", name, "' ends early: the file was cut while tolk read it");
        target += got;
        offset += got;
        bytes -= static_cast<std::size_t>(got);
    }
}

}  // namespace tolk
