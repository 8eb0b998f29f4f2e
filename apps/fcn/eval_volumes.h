// fcn eval's volume mode (eval_volumes.cpp): --predictions label volumes scored against --truth ones.
#pragma once

#include <string>
#include <vector>

#include "fcn/eval/volumes.h"

namespace fcn::cli {

// Scores `predictions` (one NIfTI label volume or folder of them) against `truth` volume by volume and
// prints the table (or --json); --markdown writes it as Markdown too.
void run_volume_eval(const std::vector<std::string>& predictions, const std::string& truth, const VolumeScoreOptions& options, bool json_output,
                     const std::string& markdown);

}  // namespace fcn::cli
