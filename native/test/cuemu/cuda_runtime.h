// cuda_runtime.h — the emulator's stand-in for the CUDA runtime header (see cuemu.h)
#pragma once
#include "cuemu.h"
