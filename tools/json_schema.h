// JSON input checking for scenarios: a validator for the subset of JSON Schema (draft 2020-12)
// that scenarios/scenario.schema.json uses, and positions (line, column) of JSON pointers in the
// source text, which nlohmann::json does not keep.
//
// Supported keywords: type (a name or a list), properties, required, additionalProperties
// (false or a schema), enum, const, minimum, maximum, minItems, maxItems, minLength, maxLength,
// items (one schema), pattern (the ECMAScript subset of tools/json_pattern.h, matched without
// recursion; unanchored as the standard says), anyOf, oneOf, $ref to
// "#/$defs/<name>"; description/title/$schema/$id/$defs are annotations. Any other keyword in a
// schema is refused when the validator is built, so the schema cannot silently ask for more than
// is checked. minimum/maximum compare exactly (a 64-bit integer is never rounded through a
// double); minLength/maxLength count characters (UTF-8 code points).
//
// Errors: the first violation, depth first in document order, as (JSON pointer, what was
// expected) (validate), or every violation up to a limit (validate_all). For oneOf/anyOf whose
// alternatives are objects told apart by a property with `const` (the scenario's "action"), the
// alternative that the instance names is the one reported against, so a bad `prog` of a `run`
// action reads "expected ..." at .../prog, not "matches no alternative".
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tools/json_pattern.h"

namespace bpftsim::tools {

// "a/b" -> "a~1b" (RFC 6901), for building pointers from keys.
std::string json_pointer_escape(const std::string& key);

struct TextPos {
  int line = 1;    // 1-based
  int column = 1;  // 1-based, in bytes
};

// Line and column of byte `offset` in `text`.
TextPos text_pos(const std::string& text, std::size_t offset);

// Where values of a JSON text are, by JSON pointer: for a member of an object, where its key
// starts; for an array element or the root, where the value starts. nlohmann::json keeps no
// positions, so the text is scanned again: the constructor scans it once for the problems below,
// and each query scans it once more (errors are rare; nothing per value is kept, so a large
// document costs no memory here). Every scan is iterative: nesting depth costs no stack.
class JsonPositions {
 public:
  // Nesting deeper than this is refused (problem()): no input the tools read needs more.
  static constexpr int kMaxDepth = 64;

  explicit JsonPositions(std::string text);

  // The offset for `pointer`, or for its nearest ancestor that has one (the root at worst).
  std::size_t offset(const std::string& pointer) const;
  // The first key that appears twice in one object (nlohmann keeps only one of them), and where
  // its second occurrence starts.
  const std::optional<std::string>& duplicate_key() const { return duplicate_; }
  std::size_t duplicate_offset() const { return duplicate_at_; }
  // The pointer of the innermost value that starts at or before `offset` (syntax errors).
  std::string pointer_near(std::size_t offset) const;

  // The first value no input may hold, found before nlohmann parses the text (which would throw
  // out_of_range for 1e400 and silently turn 2^64 into a double): nesting deeper than kMaxDepth,
  // an integer literal outside [-2^63, 2^64-1], a number no double holds.
  struct Problem {
    std::string pointer;
    std::size_t offset = 0;
    std::string message;
  };
  const std::optional<Problem>& problem() const { return problem_; }

 private:
  class Scanner;
  std::string text_;
  std::optional<std::string> duplicate_;
  std::size_t duplicate_at_ = 0;
  std::optional<Problem> problem_;
};

// nlohmann's exception text without its "[json.exception.parse_error.101] parse error at line
// N, column M: " prefix (the callers print their own position).
std::string json_error_text(const std::string& what);

// One JSON input document parsed: problem(), then syntax (nlohmann), then duplicate keys, each as
// (offset into the text, pointer, message). `pos` must be the positions of `text`.
struct JsonTextError {
  std::size_t offset = 0;
  std::string pointer;
  std::string message;
};
std::optional<JsonTextError> parse_json_input(const std::string& text, const JsonPositions& pos,
                                              nlohmann::json* out);

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
  // Every violation, up to `max` + 1 (more than `max` returned: checking stopped there): each
  // element and member is checked on its own, so one bad action does not hide the next; a value's
  // own violations (its type, its alternatives) count once. Returned in the order found (members
  // in key order); callers sort them by place.
  std::vector<SchemaViolation> validate_all(const nlohmann::json& instance, std::size_t max) const;

 private:
  const nlohmann::json& resolve(const nlohmann::json& schema) const;
  std::optional<SchemaViolation> check(const nlohmann::json& schema, const nlohmann::json& inst,
                                       const std::string& ptr, int depth,
                                       std::vector<SchemaViolation>* all = nullptr,
                                       std::size_t max = 0) const;
  std::optional<SchemaViolation> check_alternatives(const nlohmann::json& schema,
                                                    const nlohmann::json& inst,
                                                    const std::string& ptr, int depth,
                                                    bool one_of) const;
  std::string describe(const nlohmann::json& schema) const;
  const Pattern& pattern(const std::string& source) const;
  void check_keywords(const nlohmann::json& schema, const std::string& where);

  nlohmann::json root_;
  std::map<std::string, std::unique_ptr<Pattern>> patterns_;  // compiled with the schema
};

}  // namespace bpftsim::tools
