// tolk command line (placeholder until the CLI lands): parses nothing yet.
#include <cstdio>
int main() { std::puts("tolk"); return 0; }
