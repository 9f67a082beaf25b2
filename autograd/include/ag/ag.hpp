#pragma once
// The whole engine in one include.
#include "ag/dot.hpp"
#include "ag/error.hpp"
#include "ag/grad_mode.hpp"
#include "ag/gradcheck.hpp"
#include "ag/ops.hpp"
#include "ag/tensor.hpp"
