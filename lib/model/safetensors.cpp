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
    ::close(fd);  // the mapping keeps the file alive
    TOLK_CHECK(map != MAP_FAILED, file, ": mmap failed: ", std::strerror(errno));
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
      map_(std::exchange(other.map_, nullptr)),
      map_size_(std::exchange(other.map_size_, 0)),
      data_start_(other.data_start_),
      infos_(std::move(other.infos_)),
      metadata_(std::move(other.metadata_)) {}

SafeTensorsFile& SafeTensorsFile::operator=(SafeTensorsFile&& other) noexcept {
    if (this != &other) {
        unmap();
        path_ = std::move(other.path_);
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
    // The data section need not be aligned (any header length is legal), so read through memcpy.
    const unsigned char* src = map_ + data_start_ + ti.begin;
    const int64_t n = out.numel();
    if (ti.dtype == DType::f32) {
        if (n) std::memcpy(dst, src, static_cast<std::size_t>(n) * 4);
        release_pages(src, n * 4);
        return out;
    }
    for (int64_t i = 0; i < n; ++i) {
        uint16_t bits;
        std::memcpy(&bits, src + 2 * i, 2);
        dst[i] = ti.dtype == DType::f16 ? f16_to_f32(bits) : bf16_to_f32(bits);
    }
    release_pages(src, n * 2);
    return out;
}

void SafeTensorsFile::release_pages(const unsigned char* begin, int64_t bytes) const {
    // A tensor is read once, when its layer is built: its pages of the mapping can leave this process's resident
    // memory right away (they stay in the page cache), so loading never holds the whole file and its f32 copies
    // at once. Only whole pages inside the tensor are released; a neighbour's shared page stays.
    const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
    const auto first = (reinterpret_cast<uintptr_t>(begin) + page - 1) / page * page;
    const auto last = (reinterpret_cast<uintptr_t>(begin) + static_cast<uintptr_t>(bytes)) / page * page;
    if (last > first) ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

}  // namespace tolk
