#include "tools/json_schema.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>
#include <stdexcept>
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
// Positions: a minimal recursive scan of JSON text recording where each value (or member key)
// starts. It only needs to follow the structure; nlohmann does the real parse and its errors.

class JsonPositions::Scanner {
 public:
  Scanner(const std::string& s, JsonPositions& out) : s_(s), out_(out) {}

  void run() {
    skip_ws();
    record("", i_);
    value("", 0);
  }

 private:
  struct Stop {};

  void record(const std::string& ptr, std::size_t at) { out_.offsets_.emplace(ptr, at); }
  [[noreturn]] void stop() { throw Stop{}; }
  bool eof() const { return i_ >= s_.size(); }
  char peek() const { return eof() ? '\0' : s_[i_]; }
  void skip_ws() {
    while (!eof() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r'))
      ++i_;
  }
  void expect(char c) {
    skip_ws();
    if (peek() != c) stop();
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

  std::uint32_t hex4() {
    if (i_ + 4 > s_.size()) stop();
    std::uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = s_[i_++];
      v <<= 4;
      if (c >= '0' && c <= '9') {
        v |= static_cast<std::uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        v |= static_cast<std::uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        v |= static_cast<std::uint32_t>(c - 'A' + 10);
      } else {
        stop();
      }
    }
    return v;
  }

  std::string string() {
    if (peek() != '"') stop();
    ++i_;
    std::string out;
    while (true) {
      if (eof()) stop();
      const char c = s_[i_++];
      if (c == '"') return out;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (eof()) stop();
      const char e = s_[i_++];
      switch (e) {
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          std::uint32_t cp = hex4();
          if (cp >= 0xd800 && cp < 0xdc00 && i_ + 1 < s_.size() && s_[i_] == '\\' &&
              s_[i_ + 1] == 'u') {
            i_ += 2;
            const std::uint32_t lo = hex4();
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          }
          put_utf8(out, cp);
          break;
        }
        default:
          out += e;
      }
    }
  }

  void value(const std::string& ptr, int depth) {
    if (depth > 512) stop();
    skip_ws();
    const char c = peek();
    if (c == '{') {
      ++i_;
      std::set<std::string> seen;
      skip_ws();
      if (peek() == '}') {
        ++i_;
        return;
      }
      while (true) {
        skip_ws();
        const std::size_t key_at = i_;
        const std::string key = string();
        const std::string child = ptr + "/" + json_pointer_escape(key);
        if (!seen.insert(key).second && !out_.duplicate_) {
          out_.duplicate_ = child;
          out_.duplicate_at_ = key_at;
        }
        record(child, key_at);
        expect(':');
        value(child, depth + 1);
        skip_ws();
        if (peek() == ',') {
          ++i_;
          continue;
        }
        expect('}');
        return;
      }
    }
    if (c == '[') {
      ++i_;
      skip_ws();
      if (peek() == ']') {
        ++i_;
        return;
      }
      for (std::size_t n = 0;; ++n) {
        skip_ws();
        const std::string child = ptr + "/" + std::to_string(n);
        record(child, i_);
        value(child, depth + 1);
        skip_ws();
        if (peek() == ',') {
          ++i_;
          continue;
        }
        expect(']');
        return;
      }
    }
    if (c == '"') {
      string();
      return;
    }
    // number, true, false, null: up to the next delimiter
    const std::size_t start = i_;
    while (!eof() && std::string_view(",]} \t\r\n").find(s_[i_]) == std::string_view::npos)
      ++i_;
    if (i_ == start) stop();
  }

  const std::string& s_;
  JsonPositions& out_;
  std::size_t i_ = 0;

 public:
  void run_guarded() {
    try {
      run();
    } catch (const Stop&) {
    }
  }
};

JsonPositions::JsonPositions(const std::string& text) {
  Scanner(text, *this).run_guarded();
  offsets_.emplace("", 0);
}

std::size_t JsonPositions::offset(const std::string& pointer) const {
  std::string p = pointer;
  while (true) {
    auto it = offsets_.find(p);
    if (it != offsets_.end()) return it->second;
    const auto slash = p.rfind('/');
    if (slash == std::string::npos) return 0;
    p.resize(slash);
  }
}

std::string JsonPositions::pointer_near(std::size_t offset) const {
  std::string best;
  std::size_t best_at = 0;
  for (const auto& [ptr, at] : offsets_)
    if (at <= offset && at >= best_at) {
      best = ptr;
      best_at = at;
    }
  return best;
}

// ---------------------------------------------------------------------------------------------
// Validator

namespace {

const std::set<std::string>& supported_keywords() {
  static const std::set<std::string> k = {
      "$schema",     "$id",       "$defs",      "$ref",     "title",
      "description", "type",      "properties", "required", "additionalProperties",
      "enum",        "const",     "minimum",    "maximum",  "minItems",
      "maxItems",    "minLength", "items",      "pattern",  "anyOf",
      "oneOf"};
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

long double number(const Json& v) {
  if (v.is_number_unsigned()) return static_cast<long double>(v.get<std::uint64_t>());
  if (v.is_number_integer()) return static_cast<long double>(v.get<std::int64_t>());
  return static_cast<long double>(v.get<double>());
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

void JsonSchema::check_keywords(const Json& schema, const std::string& where) const {
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
      (void)regex(v.get<std::string>());
    }
  }
}

const std::regex& JsonSchema::regex(const std::string& pattern) const {
  auto& slot = regexes_[pattern];
  if (!slot) slot = std::make_unique<std::regex>(pattern, std::regex::ECMAScript);
  return *slot;
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
  for (const Json* a : alts)
    if (!check(*a, inst, ptr, depth + 1)) ++matches;
  if (matches == 0)
    return SchemaViolation{ptr, fmt::format("expected {}, got {}", describe(schema), found(inst))};
  if (one_of && matches > 1)
    return SchemaViolation{
        ptr, fmt::format("matches {} alternatives of oneOf, expected exactly one", matches)};
  return std::nullopt;
}

std::optional<SchemaViolation> JsonSchema::check(const Json& schema_in, const Json& inst,
                                                 const std::string& ptr, int depth) const {
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
    if (schema.contains("minimum") && number(inst) < number(schema["minimum"]))
      return fail(describe(schema));
    if (schema.contains("maximum") && number(inst) > number(schema["maximum"]))
      return fail(describe(schema));
  }
  if (inst.is_string()) {
    const auto& s = inst.get_ref<const std::string&>();
    if (schema.contains("minLength") && s.size() < schema["minLength"].get<std::size_t>())
      return fail(fmt::format("a string of at least {} characters",
                              schema["minLength"].get<std::size_t>()));
    if (schema.contains("pattern") &&
        !std::regex_search(s, regex(schema["pattern"].get<std::string>())))
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
      for (std::size_t i = 0; i < inst.size(); ++i)
        if (auto v = check(schema["items"], inst[i], ptr + "/" + std::to_string(i), depth + 1))
          return v;
  }
  if (inst.is_object()) {
    const Json* props = schema.contains("properties") ? &schema["properties"] : nullptr;
    for (const auto& [k, v] : inst.items()) {
      const std::string child = ptr + "/" + json_pointer_escape(k);
      if (props && props->contains(k)) {
        if (auto e = check((*props)[k], v, child, depth + 1)) return e;
        continue;
      }
      if (!schema.contains("additionalProperties")) continue;
      const Json& extra = schema["additionalProperties"];
      if (extra.is_boolean() && !extra.get<bool>()) {
        std::vector<std::string> known;
        if (props)
          for (const auto& [pk, pv] : props->items())
            known.push_back(pk);
        return SchemaViolation{child, fmt::format("unknown key '{}' (expected one of: {})", k,
                                                  fmt::join(known, ", "))};
      }
      if (auto e = check(extra, v, child, depth + 1)) return e;
    }
    // After the keys: a misspelt required key reads "unknown key 'timline'", not "missing".
    if (schema.contains("required"))
      for (const auto& r : schema["required"])
        if (!inst.contains(r.get<std::string>()))
          return SchemaViolation{ptr,
                                 fmt::format("missing required key '{}'", r.get<std::string>())};
  }
  if (schema.contains("anyOf"))
    if (auto e = check_alternatives(schema, inst, ptr, depth, false)) return e;
  if (schema.contains("oneOf"))
    if (auto e = check_alternatives(schema, inst, ptr, depth, true)) return e;
  return std::nullopt;
}

}  // namespace bpftsim::tools
