/* testpki.h - in-process test certificates (being written). */
#ifndef RT_TESTPKI_H
#define RT_TESTPKI_H
#endif
