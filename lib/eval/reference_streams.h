// Corpus scoring over one or more reference streams, shared by BLEU and chrF: checks the streams line up with the
// hypotheses, sums each segment's statistics against its non-empty references, and works out sacreBLEU's nrefs.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "core/error.h"

namespace tolk {

// segment_stats(hypothesis, refs) -> Stats; Stats supports +=. Returns the nrefs value of the signature:
// the reference count when every segment has the same number of non-empty references, else 0 ("var").
template <typename Stats, typename SegmentStats>
int sum_over_references(const char* metric, const std::vector<std::string>& hypotheses,
                        const std::vector<std::vector<std::string>>& references, Stats& total,
                        SegmentStats&& segment_stats) {
    TOLK_CHECK(!references.empty(), metric, ": no reference streams given");
    for (size_t k = 0; k < references.size(); ++k)
        TOLK_CHECK(references[k].size() == hypotheses.size(), metric, ": reference stream ", k + 1, " has ",
                   references[k].size(), " segments, the hypotheses have ", hypotheses.size());
    std::set<size_t> ref_counts;  // distinct numbers of non-empty references per segment
    std::vector<std::string> refs;
    for (size_t i = 0; i < hypotheses.size(); ++i) {
        refs.clear();
        for (const auto& stream : references)
            if (!stream[i].empty()) refs.push_back(stream[i]);
        TOLK_CHECK(!refs.empty(), metric, ": segment ", i + 1, " has no non-empty reference");
        ref_counts.insert(refs.size());
        total += segment_stats(hypotheses[i], refs);
    }
    if (ref_counts.size() == 1) return static_cast<int>(*ref_counts.begin());
    return ref_counts.size() > 1 ? 0 : static_cast<int>(references.size());
}

}  // namespace tolk
