/*
 * embed.c: Lua sources that are part of the engine, compiled into the binary so that every app
 * (the Aurora app, the simulator, tests) finds them without a search path. Each is a
 * NUL-terminated string.
 */
__asm__(".section .rodata\n"
        ".global aurora_embed_test_lua\n"
        ".type aurora_embed_test_lua, @object\n"
        "aurora_embed_test_lua:\n"
        ".incbin \"src/lua/test.lua\"\n"
        ".byte 0\n"
        ".previous\n");
