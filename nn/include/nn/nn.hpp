#pragma once
// All of nn in one include.
#include "nn/attention.hpp"
#include "nn/beam_search.hpp"
#include "nn/distributions.hpp"
#include "nn/gpt.hpp"
#include "nn/layers.hpp"
#include "nn/module.hpp"
#include "nn/rnn.hpp"
#include "nn/sampling.hpp"
#include "nn/seq2seq.hpp"
#include "nn/transformer.hpp"
#include "nn/vision.hpp"
