#include "packages/requirement.h"

#include <array>
#include <cctype>
#include <cstdio>

#include "util/text.h"

namespace mcpx::packages {
namespace {

constexpr size_t kQuoteMax = 80;  // longer input is cut in messages

bool IsAlnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }
bool IsSpace(char c) { return c == ' ' || c == '\t'; }
bool IsNameChar(char c) { return IsAlnum(c) || c == '.' || c == '_' || c == '-'; }

std::string_view Trim(std::string_view s) {
  const auto ws = [](char c) { return IsSpace(c) || c == '\r' || c == '\n'; };
  while (!s.empty() && ws(s.front())) s.remove_prefix(1);
  while (!s.empty() && ws(s.back())) s.remove_suffix(1);
  return s;
}

// The input in double quotes for a message: non-printable bytes as \xNN, cut when long.
std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size() && i < kQuoteMax; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7f) {
      std::array<char, 5> hex{};
      std::snprintf(hex.data(), hex.size(), "\\x%02x", c);
      out += hex.data();
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > kQuoteMax) out += "...";
  return out + "\"";
}

Status Refuse(std::string_view text, std::string_view why) {
  return InvalidArgument(Quote(text) + " " + std::string(why) + "; " +
                         std::string(kRequirementHint));
}

Status MoreThanOne(std::string_view text) {
  return Refuse(text, "holds more than one requirement: one requirement per call");
}

constexpr std::string_view kNoSources = "the operator chooses the package sources";

bool EndsWithNoCase(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && AsciiLower(s.substr(s.size() - suffix.size())) == suffix;
}

// "git+" etc. at the start or after a separator (a direct reference "name @ git+https://...").
std::string_view VcsPrefix(std::string_view s) {
  static constexpr std::array<std::string_view, 4> kVcs = {"git+", "hg+", "svn+", "bzr+"};
  const std::string lower = AsciiLower(s);
  for (std::string_view v : kVcs) {
    for (size_t at = lower.find(v); at != std::string::npos; at = lower.find(v, at + 1)) {
      if (at == 0 || !IsNameChar(lower[at - 1])) return v;
    }
  }
  return {};
}

// Environment marker variables (PEP 508, with the legacy dotted spellings pip still reads).
bool IsMarkerVariable(std::string_view id) {
  static constexpr std::string_view kVars[] = {"python_version",
                                               "python_full_version",
                                               "os_name",
                                               "sys_platform",
                                               "platform_release",
                                               "platform_system",
                                               "platform_version",
                                               "platform_machine",
                                               "platform_python_implementation",
                                               "implementation_name",
                                               "implementation_version",
                                               "extra",
                                               "os.name",
                                               "sys.platform",
                                               "platform.version",
                                               "platform.machine",
                                               "platform.python_implementation",
                                               "python_implementation"};
  for (std::string_view v : kVars) {
    if (id == v) return true;
  }
  return false;
}

// A recursive-descent reader of the requirement grammar after the checks for sources and shell
// syntax. Each Read* returns the refusal, or Ok with pos_ past what it read.
class Reader {
 public:
  explicit Reader(std::string_view text) : text_(text) {}

  Result<Requirement> Read() {
    Requirement r;
    r.text = std::string(text_);
    RETURN_IF_ERROR(ReadName(&r.name, "the requirement"));
    SkipSpace();
    if (Peek() == '[') RETURN_IF_ERROR(ReadExtras());
    RETURN_IF_ERROR(ReadSpecifiers(r.name));
    SkipSpace();
    if (Peek() == ';') {
      ++pos_;
      RETURN_IF_ERROR(ReadMarker());
    }
    SkipSpace();
    if (!AtEnd()) return Unexpected("after the requirement");
    r.normalized = NormalizeProjectName(r.name);
    return r;
  }

 private:
  bool AtEnd() const { return pos_ >= text_.size(); }
  char Peek(size_t ahead = 0) const {
    return pos_ + ahead < text_.size() ? text_[pos_ + ahead] : '\0';
  }
  void SkipSpace() {
    while (IsSpace(Peek())) ++pos_;
  }
  bool Consume(std::string_view s) {
    if (text_.substr(pos_, s.size()) != s) return false;
    pos_ += s.size();
    return true;
  }

  Status Unexpected(std::string_view where) const {
    if (AtEnd()) return Refuse(text_, "ends early " + std::string(where));
    return Refuse(text_, "has an unexpected '" + std::string(1, Peek()) + "' at position " +
                             std::to_string(pos_ + 1) + " " + std::string(where));
  }

  // PEP 508 identifier: alphanumeric at both ends, ._- inside.
  Status ReadName(std::string* out, std::string_view what) {
    const size_t start = pos_;
    while (IsNameChar(Peek())) ++pos_;
    const std::string_view name = text_.substr(start, pos_ - start);
    if (name.empty()) {
      return Unexpected("where " + std::string(what) + "'s name should be");
    }
    if (!IsAlnum(name.front()) || !IsAlnum(name.back())) {
      return Refuse(text_, "has the name " + Quote(name) +
                               ", which must start and end with a letter or digit");
    }
    *out = std::string(name);
    return Status::Ok();
  }

  Status ReadExtras() {
    ++pos_;  // '['
    SkipSpace();
    if (Consume("]")) return Status::Ok();
    while (true) {
      std::string extra;
      RETURN_IF_ERROR(ReadName(&extra, "an extra"));
      SkipSpace();
      if (Consume("]")) return Status::Ok();
      if (!Consume(",")) return Unexpected("in the [extras] (names separated by ',')");
      SkipSpace();
    }
  }

  // Operators, longest first so "===" is not read as "==".
  std::string_view ReadOperator() {
    static constexpr std::array<std::string_view, 8> kOps = {
        "===", "~=", "==", "!=", "<=", ">=", "<", ">"};
    for (std::string_view op : kOps) {
      if (Consume(op)) return op;
    }
    return {};
  }

  Status ReadSpecifiers(std::string_view name) {
    SkipSpace();
    const bool parens = Consume("(");
    if (parens) SkipSpace();
    bool first = true;
    while (true) {
      const size_t op_at = pos_;
      const std::string_view op = ReadOperator();
      if (op.empty()) {
        if (first && !parens) {
          // No specifier at all: what follows is checked by the caller, unless it is plainly a
          // bare version or another requirement.
          if (IsAlnum(Peek()) && pos_ > 0 && IsSpace(text_[pos_ - 1])) {
            return BareWordAfter(name);
          }
          if (Peek() == ',') return MoreThanOne(text_);
          if (Peek() == '=') {
            return Refuse(text_,
                          "uses '=', which is not a version operator (use ==, >=, <=, "
                          "!=, ~=, <, > or ===)");
          }
          return Status::Ok();
        }
        if (!first && IsAlnum(Peek())) return MoreThanOne(text_);
        return Unexpected("where a version operator (==, >=, <=, !=, ~=, <, >, ===) should be");
      }
      first = false;
      SkipSpace();
      RETURN_IF_ERROR(ReadVersion(op, op_at));
      SkipSpace();
      if (Consume(",")) {
        SkipSpace();
        continue;
      }
      if (parens) {
        if (!Consume(")")) return Unexpected("where ',' or ')' should be");
      } else if (IsAlnum(Peek())) {
        return MoreThanOne(text_);
      }
      return Status::Ok();
    }
  }

  // "numpy 1.0" (a version without operator) or "numpy pandas" (two requirements).
  Status BareWordAfter(std::string_view name) {
    const size_t start = pos_;
    size_t end = start;
    while (end < text_.size() && IsNameChar(text_[end])) ++end;
    const std::string_view word = text_.substr(start, end - start);
    if (word.find_first_not_of("0123456789.*") == std::string_view::npos) {
      return Refuse(text_, "gives the version " + Quote(word) + " without an operator (e.g. " +
                               std::string(name) + "==" + std::string(word) + ")");
    }
    return MoreThanOne(text_);
  }

  // PEP 440 versions, loosely: a digit first, then [A-Za-z0-9._+!-]; a trailing ".*" only
  // with == and !=. "===" compares strings, so it takes any run of non-separators.
  Status ReadVersion(std::string_view op, size_t op_at) {
    const size_t start = pos_;
    if (op == "===") {
      while (!AtEnd() && !IsSpace(Peek()) && Peek() != ',' && Peek() != ';' && Peek() != ')') {
        ++pos_;
      }
    } else {
      while (IsNameChar(Peek()) || Peek() == '+' || Peek() == '!' || Peek() == '*') ++pos_;
    }
    const std::string_view v = text_.substr(start, pos_ - start);
    const std::string at = " at position " + std::to_string(op_at + 1);
    if (v.empty()) {
      return Refuse(
          text_, "has the operator '" + std::string(op) + "'" + at + " without a version after it");
    }
    if (op == "===") return Status::Ok();
    // PEP 440: an optional "v", then a digit (the epoch's or the release's).
    const size_t digit = (v.front() == 'v' || v.front() == 'V') ? 1 : 0;
    if (digit >= v.size() || std::isdigit(static_cast<unsigned char>(v[digit])) == 0) {
      return Refuse(text_, "has " + Quote(v) + at +
                               " where a version should be: versions start with a digit, "
                               "e.g. >=1.0");
    }
    const size_t star = v.find('*');
    if (star != std::string_view::npos) {
      if (op != "==" && op != "!=") {
        return Refuse(text_, "has the wildcard version " + Quote(v) + at +
                                 ": wildcards go with == and != only");
      }
      if (star != v.size() - 1 || star < 2 || v[star - 1] != '.') {
        return Refuse(text_, "has the version " + Quote(v) + at +
                                 ": a wildcard is a trailing \".*\", e.g. ==1.*");
      }
    }
    return Status::Ok();
  }

  // marker_or := marker_and ("or" marker_and)*
  Status ReadMarker() {
    SkipSpace();
    if (AtEnd()) return Refuse(text_, "ends with ';' but no environment marker follows it");
    return ReadMarkerOr(0);
  }

  Status ReadMarkerOr(int depth) {
    RETURN_IF_ERROR(ReadMarkerAnd(depth));
    while (ConsumeKeyword("or")) RETURN_IF_ERROR(ReadMarkerAnd(depth));
    return Status::Ok();
  }

  Status ReadMarkerAnd(int depth) {
    RETURN_IF_ERROR(ReadMarkerTerm(depth));
    while (ConsumeKeyword("and")) RETURN_IF_ERROR(ReadMarkerTerm(depth));
    return Status::Ok();
  }

  // "(" marker_or ")" | value op value
  Status ReadMarkerTerm(int depth) {
    SkipSpace();
    if (Consume("(")) {
      if (depth >= 16) return Refuse(text_, "nests parentheses in its marker too deeply");
      RETURN_IF_ERROR(ReadMarkerOr(depth + 1));
      SkipSpace();
      if (!Consume(")")) return Unexpected("where the marker's ')' should be");
      return Status::Ok();
    }
    RETURN_IF_ERROR(ReadMarkerValue());
    SkipSpace();
    if (ReadOperator().empty() && !ConsumeKeyword("in") &&
        !(ConsumeKeyword("not") && ConsumeKeyword("in"))) {
      return Unexpected("in the marker, where a comparison (==, !=, <, in, not in, ...) should be");
    }
    return ReadMarkerValue();
  }

  Status ReadMarkerValue() {
    SkipSpace();
    const char q = Peek();
    if (q == '"' || q == '\'') {
      const size_t close = text_.find(q, pos_ + 1);
      if (close == std::string_view::npos) {
        return Refuse(text_, std::string("has an unclosed ") + q + " in its marker");
      }
      pos_ = close + 1;
      return Status::Ok();
    }
    const size_t start = pos_;
    while (IsAlnum(Peek()) || Peek() == '_' || Peek() == '.') ++pos_;
    const std::string_view id = text_.substr(start, pos_ - start);
    if (id.empty()) return Unexpected("in the marker, where a variable or quoted string should be");
    if (!IsMarkerVariable(id)) {
      return Refuse(text_, "has " + Quote(id) +
                               " in its marker, which is not a marker variable (python_version, "
                               "sys_platform, platform_machine, extra, ...) or a quoted string");
    }
    return Status::Ok();
  }

  // A word operator, followed by a non-identifier character.
  bool ConsumeKeyword(std::string_view kw) {
    SkipSpace();
    if (text_.substr(pos_, kw.size()) != kw) return false;
    const char after = pos_ + kw.size() < text_.size() ? text_[pos_ + kw.size()] : '\0';
    if (IsAlnum(after) || after == '_' || after == '.') return false;
    pos_ += kw.size();
    return true;
  }

  std::string_view text_;
  size_t pos_ = 0;
};

// Characters no requirement needs and a shell would act on; pip runs without a shell, but naming
// the character tells the model what went wrong.
constexpr std::string_view kShellMetachars = "|&$`";

// The checks before the grammar, each with its own message: bytes, then anything that names a
// source (options, VCS, direct references, URLs, paths), then shell syntax.
Status CheckShape(std::string_view text) {
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '\n' || c == '\r') return MoreThanOne(text);
    if (c == 0) return Refuse(text, "holds a NUL byte");
    if (c >= 0x80) {
      return Refuse(text, "holds a non-ASCII byte at position " + std::to_string(i + 1) +
                              ": package names, versions and markers are ASCII");
    }
    if ((c < 0x20 && c != '\t') || c == 0x7f) {
      std::array<char, 5> hex{};
      std::snprintf(hex.data(), hex.size(), "0x%02x", c);
      return Refuse(text, std::string("holds the control character ") + hex.data() +
                              " at position " + std::to_string(i + 1));
    }
  }
  if (text.front() == '-') {
    return Refuse(text, "starts with '-': options are not accepted: " + std::string(kNoSources));
  }
  if (const std::string_view vcs = VcsPrefix(text); !vcs.empty()) {
    return Refuse(text, "is a version-control link (" + std::string(vcs) +
                            "): only package names are accepted, " + std::string(kNoSources));
  }
  // "name @ URL" (PEP 508 direct reference): the text before '@' is a name, maybe with extras.
  if (const size_t at = text.find('@'); at != std::string_view::npos) {
    const std::string_view before = Trim(text.substr(0, at));
    if (!before.empty() && IsAlnum(before.front()) &&
        before.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                                 "._-[], ") == std::string_view::npos) {
      return Refuse(text, "is a direct reference (name @ URL): only package names are accepted, " +
                              std::string(kNoSources));
    }
  }
  if (text.find("://") != std::string_view::npos) {
    return Refuse(text, "is a URL: only package names are accepted, " + std::string(kNoSources));
  }
  for (char c : kShellMetachars) {
    if (const size_t i = text.find(c); i != std::string_view::npos) {
      return Refuse(text, std::string("holds the shell metacharacter '") + c + "' at position " +
                              std::to_string(i + 1) + ", which no requirement uses");
    }
  }
  // ';' separates the marker; anything else after it is a command line, not a marker.
  if (const size_t semi = text.find(';'); semi != std::string_view::npos) {
    const std::string_view rest = Trim(text.substr(semi + 1));
    size_t id_end = 0;
    while (id_end < rest.size() &&
           (IsAlnum(rest[id_end]) || rest[id_end] == '_' || rest[id_end] == '.')) {
      ++id_end;
    }
    // A marker starts with '(', a quoted string, or a word compared to something; which word
    // is checked with the marker.
    const std::string_view after_id = Trim(rest.substr(id_end));
    const bool marker_like =
        !rest.empty() &&
        (rest.front() == '(' || rest.front() == '"' || rest.front() == '\'' ||
         IsMarkerVariable(rest.substr(0, id_end)) ||
         (id_end > 0 && !after_id.empty() &&
          std::string_view("=!<>~").find(after_id.front()) != std::string_view::npos));
    if (!rest.empty() && !marker_like) {
      return Refuse(text, "holds the shell metacharacter ';' followed by " + Quote(rest) +
                              ", which is not an environment marker (e.g. ; python_version >= "
                              "\"3.8\")");
    }
    if (rest.find(';') != std::string_view::npos) {
      return Refuse(text, "holds the shell metacharacter ';' more than once");
    }
  }
  if (text.front() == '.' || text.front() == '~' || text.find('/') != std::string_view::npos ||
      text.find('\\') != std::string_view::npos) {
    return Refuse(text, "is a path: only package names are accepted, " + std::string(kNoSources));
  }
  for (std::string_view ext : {".whl", ".tar.gz", ".tgz", ".zip", ".tar.bz2"}) {
    if (EndsWithNoCase(text, ext)) {
      return Refuse(text, "is an archive file name (" + std::string(ext) +
                              "): only package names are accepted, " + std::string(kNoSources));
    }
  }
  return Status::Ok();
}

}  // namespace

Result<Requirement> ParseRequirement(std::string_view text) {
  // Cut before trimming so a huge input is not walked or quoted whole.
  if (text.size() > kMaxRequirementLength * 4) {
    return Refuse(text, "is " + std::to_string(text.size()) + " characters long, more than " +
                            std::to_string(kMaxRequirementLength));
  }
  const std::string_view trimmed = Trim(text);
  if (trimmed.empty()) {
    return InvalidArgument("the requirement is empty; " + std::string(kRequirementHint));
  }
  if (trimmed.size() > kMaxRequirementLength) {
    return Refuse(trimmed, "is " + std::to_string(trimmed.size()) + " characters long, more than " +
                               std::to_string(kMaxRequirementLength));
  }
  RETURN_IF_ERROR(CheckShape(trimmed));
  return Reader(trimmed).Read();
}

std::string NormalizeProjectName(std::string_view name) {
  std::string out;
  out.reserve(name.size());
  for (char c : name) {
    if (c == '-' || c == '_' || c == '.') {
      if (out.empty() || out.back() != '-') out += '-';
    } else {
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
  }
  return out;
}

}  // namespace mcpx::packages
