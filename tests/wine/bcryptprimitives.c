/*
 * Test-only stand-in for bcryptprimitives.dll, which Debian 12's wine 8.0 lacks. Rust's
 * standard library on Windows imports ProcessPrng from it, so without this no Rust .exe
 * starts under that wine. Forwards to RtlGenRandom (advapi32!SystemFunction036).
 * Never shipped: built and used by tests/windows-smoke.sh only.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x7fffffff ? 0x7fffffff : (ULONG)len;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
