/* agent_config.c - see agent_config.h. (being written) */
#include "config.h"
#include "agent_config.h"
