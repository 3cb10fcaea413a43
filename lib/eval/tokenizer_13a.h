// The mteval-v13a tokenization that sacreBLEU applies before BLEU by default ("tok:13a").
#pragma once

#include <string>
#include <string_view>

namespace tolk {

// Tokenizes one UTF-8 segment the way sacreBLEU's 13a tokenizer does:
//  1. removes "<skipped>", joins "-\n" hyphenations, turns other newlines into spaces, and decodes the
//     four SGML entities &quot; &amp; &lt; &gt; (one pass each, in that order, so "&amp;lt;" ends as "<");
//  2. pads every ASCII symbol except ' , - . with spaces: { | } ~ [ \ ] ^ _ ` space ! " # $ % & ( ) * + / : ; < = > ? @;
//  3. splits '.' and ',' off a preceding non-digit, then off a following non-digit, and '-' off a preceding
//     digit, so "3.5" and "1,000" stay whole but "end." and "2-3" are split;
//  4. collapses whitespace (Python's definition) to single spaces and trims.
// Each rule in 3 is a left-to-right non-overlapping scan, exactly as Python's re.sub, which matters for
// runs such as "a..b" -> "a . . b".
std::string tokenize_13a(std::string_view line);

}  // namespace tolk
