// JSON input checking for scenarios: a validator for the subset of JSON Schema (draft 2020-12)
// that scenarios/scenario.schema.json uses, and positions (line, column) of JSON pointers in the
// source text, which nlohmann::json does not keep.
//
// Supported keywords: type (a name or a list), properties, required, additionalProperties
// (false or a schema), enum, const, minimum, maximum, minItems, maxItems, minLength, items (one
// schema), pattern (ECMAScript, unanchored as the standard says), anyOf, oneOf, $ref to
// "#/$defs/<name>"; description/title/$schema/$id/$defs are annotations. Any other keyword in a
// schema is refused when the validator is built, so the schema cannot silently ask for more than
// is checked.
//
// Errors: the first violation, depth first in document order, as (JSON pointer, what was
// expected). For oneOf/anyOf whose alternatives are objects told apart by a property with `const`
// (the scenario's "action"), the alternative that the instance names is the one reported against,
// so a bad `prog` of a `run` action reads "expected ..." at .../prog, not "matches no alternative".
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <string>

#include <nlohmann/json.hpp>

namespace bpftsim::tools {

// "a/b" -> "a~1b" (RFC 6901), for building pointers from keys.
std::string json_pointer_escape(const std::string& key);

struct TextPos {
  int line = 1;    // 1-based
  int column = 1;  // 1-based, in bytes
};

// Line and column of byte `offset` in `text`.
TextPos text_pos(const std::string& text, std::size_t offset);

// Offsets of every value of a JSON text by JSON pointer: for a member of an object, where its key
// starts; for an array element or the root, where the value starts. Built by one scan of the text
// (no allocation per value beyond the map); stops at the first syntax error.
class JsonPositions {
 public:
  explicit JsonPositions(const std::string& text);

  // The offset for `pointer`, or for its nearest ancestor that has one (the root at worst).
  std::size_t offset(const std::string& pointer) const;
  // The first key that appears twice in one object (nlohmann keeps only one of them), and where
  // its second occurrence starts.
  const std::optional<std::string>& duplicate_key() const { return duplicate_; }
  std::size_t duplicate_offset() const { return duplicate_at_; }
  // The pointer of the innermost value that starts at or before `offset` (syntax errors).
  std::string pointer_near(std::size_t offset) const;

 private:
  class Scanner;
  std::map<std::string, std::size_t> offsets_;
  std::optional<std::string> duplicate_;
  std::size_t duplicate_at_ = 0;
};

struct SchemaViolation {
  std::string pointer;  // where, in the instance
  std::string message;  // what was expected, and what was found
};

class JsonSchema {
 public:
  // Throws std::invalid_argument when `schema` uses a keyword outside the subset above.
  explicit JsonSchema(nlohmann::json schema);
  ~JsonSchema();

  std::optional<SchemaViolation> validate(const nlohmann::json& instance) const;

 private:
  const nlohmann::json& resolve(const nlohmann::json& schema) const;
  std::optional<SchemaViolation> check(const nlohmann::json& schema, const nlohmann::json& inst,
                                       const std::string& ptr, int depth) const;
  std::optional<SchemaViolation> check_alternatives(const nlohmann::json& schema,
                                                    const nlohmann::json& inst,
                                                    const std::string& ptr, int depth,
                                                    bool one_of) const;
  std::string describe(const nlohmann::json& schema) const;
  const std::regex& regex(const std::string& pattern) const;
  void check_keywords(const nlohmann::json& schema, const std::string& where) const;

  nlohmann::json root_;
  mutable std::map<std::string, std::unique_ptr<std::regex>> regexes_;
};

}  // namespace bpftsim::tools
