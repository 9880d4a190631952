#include "tools/json_schema.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <set>
#include <stdexcept>
#include <string_view>
#include <vector>

namespace bpftsim::tools {

using Json = nlohmann::json;

std::string json_pointer_escape(const std::string& key) {
  std::string out;
  for (char c : key) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

TextPos text_pos(const std::string& text, std::size_t offset) {
  TextPos p;
  offset = std::min(offset, text.size());
  for (std::size_t i = 0; i < offset; ++i) {
    if (text[i] == '\n') {
      ++p.line;
      p.column = 1;
    } else {
      ++p.column;
    }
  }
  return p;
}

// ---------------------------------------------------------------------------------------------
// Positions: an iterative walk over JSON text that follows its structure and reports where each
// value (or member key) starts, with its pointer. It only needs the structure; nlohmann does the
// real parse and reports syntax errors. The walk stops at the first thing it does not understand.

class JsonPositions::Scanner {
 public:
  // Called at the start of every value: (pointer, offset of its key or of the value, depth).
  // Returning false stops the walk.
  using OnValue = std::function<bool(const std::string&, std::size_t, int)>;
  // Called for every number token: (token, pointer, offset); false stops.
  using OnNumber = std::function<bool(std::string_view, const std::string&, std::size_t)>;
  // Called for a key seen twice in one object; false stops.
  using OnDuplicate = std::function<bool(const std::string&, std::size_t)>;

  explicit Scanner(const std::string& s) : s_(s) {}
  OnValue on_value;
  OnNumber on_number;
  OnDuplicate on_duplicate;  // keys are remembered per object only when set

  void run() {
    skip_ws();
    if (!visit(i_)) return;
    enum class State { kValue, kKey, kAfter } state = State::kValue;
    while (true) {
      if (state == State::kValue) {
        skip_ws();
        const char c = peek();
        if (c == '{' || c == '[') {
          ++i_;
          frames_.push_back(Frame{c == '{', path_.size(), 0, {}});
          skip_ws();
          const char close = c == '{' ? '}' : ']';
          if (peek() == close) {
            ++i_;
            pop();
            state = State::kAfter;
          } else if (c == '{') {
            state = State::kKey;
          } else {
            path_ += "/0";
            if (!visit(i_)) return;
          }
          continue;
        }
        if (c == '"') {
          if (!string(nullptr)) return;
          state = State::kAfter;
          continue;
        }
        // number, true, false, null: up to the next delimiter
        const std::size_t start = i_;
        while (!eof() && std::string_view(",]}: \t\r\n").find(s_[i_]) == std::string_view::npos)
          ++i_;
        if (i_ == start) return;
        const char first = s_[start];
        if (on_number && (first == '-' || (first >= '0' && first <= '9')) &&
            !on_number(std::string_view(s_).substr(start, i_ - start), path_, start))
          return;
        state = State::kAfter;
        continue;
      }
      if (state == State::kKey) {
        skip_ws();
        const std::size_t key_at = i_;
        std::string key;
        if (!string(&key)) return;
        Frame& f = frames_.back();
        path_.resize(f.path_len);
        path_ += '/';
        path_ += json_pointer_escape(key);
        if (on_duplicate && !f.keys.insert(key).second && !on_duplicate(path_, key_at)) return;
        if (!visit(key_at)) return;
        skip_ws();
        if (peek() != ':') return;
        ++i_;
        state = State::kValue;
        continue;
      }
      // kAfter: a value ended
      if (frames_.empty()) return;
      skip_ws();
      Frame& f = frames_.back();
      const char c = peek();
      if (c == ',') {
        ++i_;
        if (f.object) {
          state = State::kKey;
        } else {
          ++f.index;
          path_.resize(f.path_len);
          path_ += '/';
          path_ += std::to_string(f.index);
          skip_ws();
          if (!visit(i_)) return;
          state = State::kValue;
        }
        continue;
      }
      if (c != (f.object ? '}' : ']')) return;
      ++i_;
      pop();
    }
  }

 private:
  struct Frame {
    bool object = false;
    std::size_t path_len = 0;  // length of the container's own pointer
    std::size_t index = 0;     // arrays: the current element
    std::set<std::string> keys;
  };

  bool visit(std::size_t at) {
    return !on_value || on_value(path_, at, static_cast<int>(frames_.size()));
  }
  void pop() {
    path_.resize(frames_.back().path_len);
    frames_.pop_back();
  }
  bool eof() const { return i_ >= s_.size(); }
  char peek() const { return eof() ? '\0' : s_[i_]; }
  void skip_ws() {
    while (!eof() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r'))
      ++i_;
  }

  static void put_utf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xc0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xe0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
      out += static_cast<char>(0xf0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    }
  }

  bool hex4(std::uint32_t* v) {
    if (i_ + 4 > s_.size()) return false;
    *v = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = s_[i_++];
      *v <<= 4;
      if (c >= '0' && c <= '9') {
        *v |= static_cast<std::uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        *v |= static_cast<std::uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        *v |= static_cast<std::uint32_t>(c - 'A' + 10);
      } else {
        return false;
      }
    }
    return true;
  }

  // A string token; its decoded text in *out when out is given.
  bool string(std::string* out) {
    if (peek() != '"') return false;
    ++i_;
    while (true) {
      if (eof()) return false;
      const char c = s_[i_++];
      if (c == '"') return true;
      if (c != '\\') {
        if (out) *out += c;
        continue;
      }
      if (eof()) return false;
      const char e = s_[i_++];
      char plain = e;
      switch (e) {
        case 'b':
          plain = '\b';
          break;
        case 'f':
          plain = '\f';
          break;
        case 'n':
          plain = '\n';
          break;
        case 'r':
          plain = '\r';
          break;
        case 't':
          plain = '\t';
          break;
        case 'u': {
          std::uint32_t cp = 0;
          if (!hex4(&cp)) return false;
          if (cp >= 0xd800 && cp < 0xdc00 && i_ + 1 < s_.size() && s_[i_] == '\\' &&
              s_[i_ + 1] == 'u') {
            i_ += 2;
            std::uint32_t lo = 0;
            if (!hex4(&lo) || lo < 0xdc00 || lo > 0xdfff) return false;
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          }
          if (out) put_utf8(*out, cp);
          continue;
        }
        default:
          break;
      }
      if (out) *out += plain;
    }
  }

  const std::string& s_;
  std::size_t i_ = 0;
  std::string path_;
  std::vector<Frame> frames_;
};

namespace {

// Why a number token cannot be held, or nothing: integers must fit int64 or uint64 (nlohmann
// would make a double of them), other numbers a finite double (nlohmann throws for 1e400).
std::optional<std::string> number_problem(std::string_view token) {
  const bool integer = token.find_first_of(".eE") == std::string_view::npos;
  const std::string text(token);
  if (integer) {
    const bool negative = token.front() == '-';
    const std::string_view digits = negative ? token.substr(1) : token;
    if (digits.empty() || digits.find_first_not_of("0123456789") != std::string_view::npos)
      return std::nullopt;  // a syntax error: nlohmann says so
    std::uint64_t u = 0;
    std::int64_t i = 0;
    const auto r = negative ? std::from_chars(token.data(), token.data() + token.size(), i)
                            : std::from_chars(token.data(), token.data() + token.size(), u);
    if (r.ec == std::errc::result_out_of_range)
      return fmt::format("integer {} is out of range (64 bits: [-2^63, 2^64-1])",
                         text.size() > 40 ? text.substr(0, 37) + "..." : text);
    return std::nullopt;
  }
  const double d = std::strtod(text.c_str(), nullptr);
  if (!std::isfinite(d))
    return fmt::format("number {} is out of range",
                       text.size() > 40 ? text.substr(0, 37) + "..." : text);
  return std::nullopt;
}

}  // namespace

JsonPositions::JsonPositions(std::string text) : text_(std::move(text)) {
  Scanner sc(text_);
  sc.on_value = [this](const std::string& ptr, std::size_t at, int depth) {
    if (depth <= kMaxDepth) return true;
    problem_ = Problem{ptr, at, fmt::format("nested deeper than {} levels", kMaxDepth)};
    return false;
  };
  sc.on_number = [this](std::string_view token, const std::string& ptr, std::size_t at) {
    auto why = number_problem(token);
    if (!why) return true;
    problem_ = Problem{ptr, at, *why};
    return false;
  };
  sc.on_duplicate = [this](const std::string& ptr, std::size_t at) {
    if (!duplicate_) {
      duplicate_ = ptr;
      duplicate_at_ = at;
    }
    return true;
  };
  sc.run();
}

std::size_t JsonPositions::offset(const std::string& pointer) const {
  // The longest pointer seen that is `pointer` or an ancestor of it.
  std::size_t best_len = 0;
  std::size_t best_at = 0;
  Scanner sc(text_);
  sc.on_value = [&](const std::string& ptr, std::size_t at, int) {
    if (ptr == pointer) {
      best_at = at;
      return false;
    }
    if (ptr.size() < pointer.size() && pointer.compare(0, ptr.size(), ptr) == 0 &&
        pointer[ptr.size()] == '/' && ptr.size() >= best_len) {
      best_len = ptr.size();
      best_at = at;
    }
    return true;
  };
  sc.run();
  return best_at;
}

std::string JsonPositions::pointer_near(std::size_t offset) const {
  std::string best;
  Scanner sc(text_);
  sc.on_value = [&](const std::string& ptr, std::size_t at, int) {
    if (at > offset) return false;
    best = ptr;
    return true;
  };
  sc.run();
  return best;
}

std::string json_error_text(const std::string& what) {
  const auto at = what.find("syntax error");
  if (at != std::string::npos) return what.substr(at);
  std::string s = what;
  if (s.rfind("[json.exception.", 0) == 0) {
    const auto close = s.find("] ");
    if (close != std::string::npos) s = s.substr(close + 2);
  }
  const auto colon = s.find(": ");
  if (s.rfind("parse error", 0) == 0 && colon != std::string::npos) s = s.substr(colon + 2);
  return s;
}

std::optional<JsonTextError> parse_json_input(const std::string& text, const JsonPositions& pos,
                                              nlohmann::json* out) {
  if (const auto& p = pos.problem()) return JsonTextError{p->offset, p->pointer, p->message};
  try {
    *out = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    const std::size_t at = e.byte > 0 ? e.byte - 1 : 0;
    return JsonTextError{at, pos.pointer_near(at), "invalid JSON: " + json_error_text(e.what())};
  } catch (const nlohmann::json::exception& e) {
    // Not expected after problem() (numbers, depth); kept so that no library error escapes.
    return JsonTextError{0, "", "invalid JSON: " + json_error_text(e.what())};
  }
  if (pos.duplicate_key())
    return JsonTextError{pos.duplicate_offset(), *pos.duplicate_key(),
                         "duplicate key (each key may appear once per object)"};
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// Validator

namespace {

const std::set<std::string>& supported_keywords() {
  static const std::set<std::string> k = {
      "$schema",     "$id",       "$defs",      "$ref",     "title",
      "description", "type",      "properties", "required", "additionalProperties",
      "enum",        "const",     "minimum",    "maximum",  "minItems",
      "maxItems",    "minLength", "maxLength",  "items",    "pattern",
      "anyOf",       "oneOf"};
  return k;
}

std::string type_of(const Json& v) {
  switch (v.type()) {
    case Json::value_t::null:
      return "null";
    case Json::value_t::boolean:
      return "boolean";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
      return "integer";
    case Json::value_t::number_float:
      return "number";
    case Json::value_t::string:
      return "string";
    case Json::value_t::array:
      return "array";
    case Json::value_t::object:
      return "object";
    default:
      return "value";
  }
}

bool has_type(const Json& v, const std::string& t) {
  if (t == "number") return v.is_number();
  return type_of(v) == t;
}

// A short rendering of what was found, for messages.
std::string found(const Json& v) {
  std::string text;
  if (v.is_object()) {
    text = "an object";
  } else if (v.is_array()) {
    text = fmt::format("an array of {}", v.size());
  } else {
    text = v.dump(-1, ' ', false, Json::error_handler_t::replace);
    if (text.size() > 60) text = text.substr(0, 57) + "...";
    text = fmt::format("{} {}", type_of(v), text);
  }
  return text;
}

// -1, 0 or 1 as a < b, a == b, a > b, for two JSON numbers, exactly: 64-bit integers are
// compared as integers (a double cannot tell 2^63-1 from 2^63); a double against an integer
// as doubles, which is exact for every double bound a schema writes.
int compare_numbers(const Json& a, const Json& b) {
  auto sign3 = [](auto x, auto y) { return x < y ? -1 : (y < x ? 1 : 0); };
  const bool a_int = a.is_number_integer();
  const bool b_int = b.is_number_integer();
  if (a_int && b_int) {
    const bool a_neg = !a.is_number_unsigned() && a.get<std::int64_t>() < 0;
    const bool b_neg = !b.is_number_unsigned() && b.get<std::int64_t>() < 0;
    if (a_neg != b_neg) return a_neg ? -1 : 1;
    if (a_neg) return sign3(a.get<std::int64_t>(), b.get<std::int64_t>());
    return sign3(a.get<std::uint64_t>(), b.get<std::uint64_t>());
  }
  return sign3(a.get<double>(), b.get<double>());
}

// Characters of UTF-8 text (code points): the bytes that do not continue a sequence.
std::size_t utf8_length(const std::string& s) {
  std::size_t n = 0;
  for (const char c : s)
    n += (static_cast<unsigned char>(c) & 0xc0) != 0x80;
  return n;
}

std::string list_values(const Json& values) {
  std::vector<std::string> out;
  for (const auto& v : values)
    out.push_back(v.dump());
  return fmt::format("{}", fmt::join(out, ", "));
}

// The property name and its const value that tells alternatives apart, when every alternative
// is an object schema with a `const` property of the same name.
std::optional<std::string> discriminator(const std::vector<const Json*>& alts) {
  std::optional<std::string> name;
  for (const Json* a : alts) {
    if (!a->contains("properties")) return std::nullopt;
    std::optional<std::string> mine;
    for (const auto& [k, s] : (*a)["properties"].items())
      if (s.is_object() && s.contains("const")) mine = k;
    if (!mine || (name && *name != *mine)) return std::nullopt;
    name = mine;
  }
  return name;
}

}  // namespace

JsonSchema::JsonSchema(Json schema) : root_(std::move(schema)) {
  check_keywords(root_, "");
}

JsonSchema::~JsonSchema() = default;

void JsonSchema::check_keywords(const Json& schema, const std::string& where) {
  if (schema.is_boolean()) return;
  if (!schema.is_object())
    throw std::invalid_argument(fmt::format("schema at '{}' is not an object", where));
  for (const auto& [k, v] : schema.items()) {
    if (!supported_keywords().count(k))
      throw std::invalid_argument(
          fmt::format("schema at '{}' uses unsupported keyword '{}'", where, k));
    if (k == "properties" || k == "$defs") {
      for (const auto& [name, sub] : v.items())
        check_keywords(sub, where + "/" + k + "/" + name);
    } else if (k == "items" || (k == "additionalProperties" && v.is_object())) {
      check_keywords(v, where + "/" + k);
    } else if (k == "anyOf" || k == "oneOf") {
      for (std::size_t i = 0; i < v.size(); ++i)
        check_keywords(v[i], fmt::format("{}/{}/{}", where, k, i));
    } else if (k == "$ref") {
      const std::string ref = v.get<std::string>();
      if (ref.rfind("#/$defs/", 0) != 0 || !root_.contains("$defs") ||
          !root_["$defs"].contains(ref.substr(8)))
        throw std::invalid_argument(
            fmt::format("schema at '{}': unresolvable $ref '{}'", where, ref));
    } else if (k == "pattern") {
      const std::string source = v.get<std::string>();
      if (!patterns_.count(source)) patterns_.emplace(source, std::make_unique<Pattern>(source));
    } else if (k == "minimum" || k == "maximum") {
      if (!v.is_number())
        throw std::invalid_argument(fmt::format("schema at '{}': {} is not a number", where, k));
    } else if (k == "minLength" || k == "maxLength" || k == "minItems" || k == "maxItems") {
      if (!v.is_number_unsigned())
        throw std::invalid_argument(
            fmt::format("schema at '{}': {} is not a non-negative integer", where, k));
    }
  }
}

const Pattern& JsonSchema::pattern(const std::string& source) const {
  return *patterns_.at(source);  // every pattern was compiled by check_keywords
}

const Json& JsonSchema::resolve(const Json& schema) const {
  const Json* s = &schema;
  for (int guard = 0; guard < 32 && s->is_object() && s->contains("$ref"); ++guard)
    s = &root_["$defs"][(*s)["$ref"].get<std::string>().substr(8)];
  return *s;
}

std::optional<SchemaViolation> JsonSchema::validate(const Json& instance) const {
  return check(root_, instance, "", 0);
}

std::vector<SchemaViolation> JsonSchema::validate_all(const Json& instance, std::size_t max) const {
  std::vector<SchemaViolation> all;
  if (auto v = check(root_, instance, "", 0, &all, max)) all.push_back(std::move(*v));
  if (all.size() > max + 1) all.resize(max + 1);
  return all;
}

// What a schema accepts, in words ("an integer >= 0", "one of \"a\", \"b\"", its description).
std::string JsonSchema::describe(const Json& schema_in) const {
  const Json& schema = resolve(schema_in);
  if (schema.contains("description") && (schema.contains("anyOf") || schema.contains("oneOf")))
    return schema["description"].get<std::string>();
  if (schema.contains("const")) return schema["const"].dump();
  if (schema.contains("enum")) return "one of " + list_values(schema["enum"]);
  std::vector<std::string> parts;
  for (const char* key : {"anyOf", "oneOf"})
    if (schema.contains(key)) {
      for (const auto& alt : schema[key])
        parts.push_back(describe(alt));
      return fmt::format("one of: {}", fmt::join(parts, "; or "));
    }
  std::string text;
  if (schema.contains("type")) {
    const Json& t = schema["type"];
    if (t.is_string()) {
      const std::string n = t.get<std::string>();
      text = (n == "integer" || n == "array" || n == "object" ? "an " : "a ") + n;
    } else {
      std::vector<std::string> names;
      for (const auto& n : t)
        names.push_back(n.get<std::string>());
      text = fmt::format("a {}", fmt::join(names, " or "));
    }
  } else {
    text = "a value";
  }
  if (schema.contains("minimum") && schema.contains("maximum")) {
    text += fmt::format(" in [{}, {}]", schema["minimum"].dump(), schema["maximum"].dump());
  } else if (schema.contains("minimum")) {
    text += " >= " + schema["minimum"].dump();
  } else if (schema.contains("maximum")) {
    text += " <= " + schema["maximum"].dump();
  }
  if (schema.contains("pattern"))
    text += fmt::format(" matching /{}/", schema["pattern"].get<std::string>());
  return text;
}

std::optional<SchemaViolation> JsonSchema::check_alternatives(const Json& schema, const Json& inst,
                                                              const std::string& ptr, int depth,
                                                              bool one_of) const {
  const Json& alts_json = schema[one_of ? "oneOf" : "anyOf"];
  std::vector<const Json*> alts;
  for (const auto& a : alts_json)
    alts.push_back(&resolve(a));
  if (auto key = discriminator(alts)) {
    if (!inst.is_object()) return SchemaViolation{ptr, "expected an object, got " + found(inst)};
    if (!inst.contains(*key)) return SchemaViolation{ptr, fmt::format("missing key '{}'", *key)};
    Json names = Json::array();
    for (const Json* a : alts) {
      const Json& c = (*a)["properties"][*key]["const"];
      names.push_back(c);
      if (c == inst[*key]) return check(*a, inst, ptr, depth + 1);
    }
    return SchemaViolation{
        ptr + "/" + json_pointer_escape(*key),
        fmt::format("expected one of {}, got {}", list_values(names), found(inst[*key]))};
  }
  std::size_t matches = 0;
  std::optional<SchemaViolation> typed;  // the violation of the one alternative of inst's type
  std::size_t typed_count = 0;
  for (const Json* a : alts) {
    auto v = check(*a, inst, ptr, depth + 1);
    if (!v) {
      ++matches;
    } else if (a->contains("type") && (*a)["type"].is_string() &&
               has_type(inst, (*a)["type"].get<std::string>())) {
      ++typed_count;
      typed = std::move(v);
    }
  }
  // Only one alternative has the instance's type: unless the schema describes itself in words,
  // that alternative's own complaint says more than the list of alternatives.
  if (matches == 0 && typed_count == 1 && !schema.contains("description")) return typed;
  if (matches == 0)
    return SchemaViolation{ptr, fmt::format("expected {}, got {}", describe(schema), found(inst))};
  if (one_of && matches > 1)
    return SchemaViolation{
        ptr, fmt::format("matches {} alternatives of oneOf, expected exactly one", matches)};
  return std::nullopt;
}

std::optional<SchemaViolation> JsonSchema::check(const Json& schema_in, const Json& inst,
                                                 const std::string& ptr, int depth,
                                                 std::vector<SchemaViolation>* all,
                                                 std::size_t max) const {
  // With `all`, the violations below this value (its elements and members) are appended there and
  // checking goes on past them, up to `max`; this value's own first violation is returned.
  auto below = [&](std::optional<SchemaViolation> v) -> std::optional<SchemaViolation> {
    if (!v || all == nullptr) return v;
    all->push_back(std::move(*v));
    return std::nullopt;
  };
  auto enough = [&] { return all != nullptr && all->size() > max; };
  if (depth > 64) return SchemaViolation{ptr, "nested too deeply"};
  const Json& schema = resolve(schema_in);
  if (schema.is_boolean()) {
    if (schema.get<bool>()) return std::nullopt;
    return SchemaViolation{ptr, "no value is allowed here"};
  }
  auto fail = [&](const std::string& what) {
    return SchemaViolation{ptr, fmt::format("expected {}, got {}", what, found(inst))};
  };

  if (schema.contains("type")) {
    const Json& t = schema["type"];
    bool ok = false;
    if (t.is_string()) {
      ok = has_type(inst, t.get<std::string>());
    } else {
      for (const auto& n : t)
        ok = ok || has_type(inst, n.get<std::string>());
    }
    if (!ok) return fail(describe(schema));
  }
  if (schema.contains("const") && inst != schema["const"]) return fail(schema["const"].dump());
  if (schema.contains("enum")) {
    const Json& e = schema["enum"];
    if (std::find(e.begin(), e.end(), inst) == e.end()) return fail("one of " + list_values(e));
  }
  if (inst.is_number()) {
    if (schema.contains("minimum") && compare_numbers(inst, schema["minimum"]) < 0)
      return fail(describe(schema));
    if (schema.contains("maximum") && compare_numbers(inst, schema["maximum"]) > 0)
      return fail(describe(schema));
  }
  if (inst.is_string()) {
    const auto& s = inst.get_ref<const std::string&>();
    const std::size_t length = utf8_length(s);
    if (schema.contains("minLength") && length < schema["minLength"].get<std::size_t>())
      return fail(fmt::format("a string of at least {} characters",
                              schema["minLength"].get<std::size_t>()));
    if (schema.contains("maxLength") && length > schema["maxLength"].get<std::size_t>())
      return SchemaViolation{
          ptr, fmt::format("expected a string of at most {} characters, got one of {} ({})",
                           schema["maxLength"].get<std::size_t>(), length, found(inst))};
    if (schema.contains("pattern") && !pattern(schema["pattern"].get<std::string>()).search(s))
      return fail(describe(schema));
  }
  if (inst.is_array()) {
    if (schema.contains("minItems") && inst.size() < schema["minItems"].get<std::size_t>())
      return SchemaViolation{ptr, fmt::format("expected at least {} element(s), got {}",
                                              schema["minItems"].get<std::size_t>(), inst.size())};
    if (schema.contains("maxItems") && inst.size() > schema["maxItems"].get<std::size_t>())
      return SchemaViolation{ptr, fmt::format("expected at most {} element(s), got {}",
                                              schema["maxItems"].get<std::size_t>(), inst.size())};
    if (schema.contains("items"))
      for (std::size_t i = 0; i < inst.size() && !enough(); ++i)
        if (auto v = below(check(schema["items"], inst[i], ptr + "/" + std::to_string(i), depth + 1,
                                 all, max)))
          return v;
  }
  if (inst.is_object()) {
    const Json* props = schema.contains("properties") ? &schema["properties"] : nullptr;
    for (const auto& [k, v] : inst.items()) {
      if (enough()) break;
      const std::string child = ptr + "/" + json_pointer_escape(k);
      if (props && props->contains(k)) {
        if (auto e = below(check((*props)[k], v, child, depth + 1, all, max))) return e;
        continue;
      }
      if (!schema.contains("additionalProperties")) continue;
      const Json& extra = schema["additionalProperties"];
      if (extra.is_boolean() && !extra.get<bool>()) {
        std::vector<std::string> known;
        if (props)
          for (const auto& [pk, pv] : props->items())
            known.push_back(pk);
        if (auto e =
                below(SchemaViolation{child, fmt::format("unknown key '{}' (expected one of: {})",
                                                         k, fmt::join(known, ", "))}))
          return e;
        continue;
      }
      if (auto e = below(check(extra, v, child, depth + 1, all, max))) return e;
    }
    // After the keys: a misspelt required key reads "unknown key 'timline'", not "missing".
    if (schema.contains("required"))
      for (const auto& r : schema["required"])
        if (!inst.contains(r.get<std::string>()))
          if (auto e = below(SchemaViolation{
                  ptr, fmt::format("missing required key '{}'", r.get<std::string>())}))
            return e;
  }
  if (schema.contains("anyOf"))
    if (auto e = check_alternatives(schema, inst, ptr, depth, false)) return e;
  if (schema.contains("oneOf"))
    if (auto e = check_alternatives(schema, inst, ptr, depth, true)) return e;
  return std::nullopt;
}

}  // namespace bpftsim::tools
