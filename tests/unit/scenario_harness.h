// What the tests that load and run scenarios in-process share: a scenario loaded, or a run,
// with an input error failing the test case (it names the file, pointer and line) instead of
// being returned; a run's failed expectations as text for INFO.
#pragma once

#include <fmt/format.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <string>
#include <utility>
#include <variant>

#include "tools/runner.h"
#include "tools/scenario.h"

namespace bpftsim::testing {

inline tools::Scenario load(const std::filesystem::path& p) {
  auto sc = tools::load_scenario(p.string());
  if (auto* e = std::get_if<tools::InputError>(&sc)) FAIL(e->text());
  return std::get<tools::Scenario>(std::move(sc));
}

inline tools::RunResult run(const tools::Scenario& sc, const tools::RunOptions& opts) {
  auto r = tools::run_scenario(sc, opts);
  if (auto* e = std::get_if<tools::InputError>(&r)) FAIL(e->text());
  return std::get<tools::RunResult>(std::move(r));
}

inline std::string failures(const tools::RunResult& r) {
  return fmt::format("{}", fmt::join(r.failures, "\n"));
}

}  // namespace bpftsim::testing
