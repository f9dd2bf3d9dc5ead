/* testpki.c - see testpki.h. */
#include "config.h"
#include "testpki.h"
int testpki_placeholder_;
