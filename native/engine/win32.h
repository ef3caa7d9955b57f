// win32.h — <windows.h> as the engine's Windows code includes it: without the min and max macros, which would
// break std::min / std::max in the same file, and without the parts the engine never uses.
#pragma once
#ifdef _WIN32
#ifndef NOMINMAX
#define NOMINMAX
#endif
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>
#endif
