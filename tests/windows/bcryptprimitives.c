/*
 * ProcessPrng for Wine 8, which lacks it.
 *
 * Rust's std (1.78 and later) takes its random bytes (HashMap keys, ...) from
 * bcryptprimitives.dll!ProcessPrng; Debian bookworm's wine64 8.0 does not export it, so
 * kiln.exe stops at start-up. This one-function DLL, placed next to kiln.exe and chosen
 * over Wine's builtin with WINEDLLOVERRIDES=bcryptprimitives=n,b, forwards to
 * BCryptGenRandom, which Wine 8 has. Windows 10 and later ship ProcessPrng themselves:
 * the DLL is for the Wine run in CI only (tests/windows/run-under-wine).
 *
 * Build: x86_64-w64-mingw32-gcc -shared -O2 -o bcryptprimitives.dll bcryptprimitives.c -lbcrypt
 */
#include <windows.h>
#include <bcrypt.h>

/* BCryptGenRandom takes a ULONG length; larger requests are filled in chunks of this. */
#define CHUNK 0x40000000u

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG n = len > CHUNK ? CHUNK : (ULONG)len;
        if (!BCRYPT_SUCCESS(BCryptGenRandom(NULL, data, n, BCRYPT_USE_SYSTEM_PREFERRED_RNG)))
            return FALSE;
        data += n;
        len -= n;
    }
    return TRUE;
}
