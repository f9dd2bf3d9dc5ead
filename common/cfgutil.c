/* cfgutil.c - see cfgutil.h. (being written) */
#include "config.h"
#include "cfgutil.h"
