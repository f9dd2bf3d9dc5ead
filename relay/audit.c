/* audit.c - see audit.h. (being written) */
#include "config.h"
#include "audit.h"
