/*
 * LD_PRELOAD for wrk in the TLS cells of benchmarks/run.py: every connection
 * wrk opens does a full TLS handshake, and the handshakes are counted.
 *
 * wrk reuses one SSL object per connection slot: when it reconnects it calls
 * SSL_shutdown() then SSL_clear(), which keeps the last session (with the
 * TLS 1.3 ticket the server sent), so its next SSL_connect() resumes it. Left
 * alone, its "Connection: close" runs against a TLS server measure resumed
 * handshakes (no certificate, no signature) after the first one per slot.
 * Here SSL_clear() drops the session first, so each handshake is a full one.
 *
 * At exit it writes, to the file named by $WRK_TLS_STATS, one JSON object:
 * handshakes completed, how many of them resumed a session (0 expected),
 * and the protocol, cipher suite and key-exchange group of the first one.
 *
 * Built by run.py with: cc -shared -fPIC -O2 -o wrk_tls.so wrk_tls.c -lssl -lcrypto -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

#include <openssl/objects.h>
#include <openssl/ssl.h>

static unsigned long full_handshakes, resumed_handshakes;
static char first_version[32], first_cipher[64], first_group[64];

int SSL_clear(SSL *s) {
    static int (*real_clear)(SSL *);
    if (!real_clear)
        real_clear = (int (*)(SSL *))dlsym(RTLD_NEXT, "SSL_clear");
    SSL_set_session(s, NULL); /* no session to offer: the next handshake is a full one */
    return real_clear(s);
}

int SSL_connect(SSL *s) {
    static int (*real_connect)(SSL *);
    if (!real_connect)
        real_connect = (int (*)(SSL *))dlsym(RTLD_NEXT, "SSL_connect");
    int r = real_connect(s);
    if (r == 1) {
        if (SSL_session_reused(s))
            __atomic_add_fetch(&resumed_handshakes, 1, __ATOMIC_RELAXED);
        else
            __atomic_add_fetch(&full_handshakes, 1, __ATOMIC_RELAXED);
        if (!first_version[0]) {
            const SSL_CIPHER *c = SSL_get_current_cipher(s);
            int nid = (int)SSL_get_negotiated_group(s);
            const char *g = nid > 0 ? OBJ_nid2sn(nid) : NULL;
            snprintf(first_cipher, sizeof first_cipher, "%s", c ? SSL_CIPHER_get_name(c) : "");
            snprintf(first_group, sizeof first_group, "%s", g ? g : "");
            snprintf(first_version, sizeof first_version, "%s", SSL_get_version(s));
        }
    }
    return r;
}

__attribute__((destructor)) static void write_stats(void) {
    const char *path = getenv("WRK_TLS_STATS");
    FILE *f;
    if (!path || !(f = fopen(path, "w")))
        return;
    fprintf(f, "{\"full\": %lu, \"resumed\": %lu, \"version\": \"%s\", \"cipher\": \"%s\", \"group\": \"%s\"}\n",
            full_handshakes, resumed_handshakes, first_version, first_cipher, first_group);
    fclose(f);
}
