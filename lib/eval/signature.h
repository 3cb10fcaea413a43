// What every metric signature shares: the version tag and the nrefs field, in sacreBLEU's format.
#pragma once

#include <string>

namespace tolk {

// The "version:" value in tolk's signatures. It is not a sacreBLEU release number, because this is
// tolk's own reimplementation; it says which sacreBLEU behaviour it reproduces (2.x defaults).
inline constexpr const char* kMetricsVersion = "tolk-2.x-compat";

// sacreBLEU prints the reference count, or "var" when segments have different numbers of non-empty
// references; nrefs <= 0 means "var" here.
inline std::string nrefs_field(int nrefs) { return nrefs > 0 ? std::to_string(nrefs) : std::string("var"); }

}  // namespace tolk
