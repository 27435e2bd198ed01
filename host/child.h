/* child.h -- core.child: a forked copy of the job that writes a checkpoint in the
 * background (the contract is in sl_api.h).
 */
#ifndef SL_CHILD_H
#define SL_CHILD_H

#include <lua.h>

/* Pushes the core.child table: fork, wait, exit. */
void sl_child_push(lua_State *L);

#endif
