/**
 * Atoms: the indivisible backend steps of API.md §7.3. An operation is a list of atoms; a backend
 * implements atoms only.
 */
export type Atom =
  | { readonly kind: 'VM_create' }
  | { readonly kind: 'VM_build'; readonly force: boolean }
  | { readonly kind: 'VM_create_device_model'; readonly saveState: boolean }
  | { readonly kind: 'VM_destroy_device_model' }
  | { readonly kind: 'VM_pause'; readonly bestEffort?: boolean }
  | { readonly kind: 'VM_unpause' }
  | { readonly kind: 'VM_mark_survivable' }
  | { readonly kind: 'VM_shutdown_domain'; readonly reason: 'poweroff' | 'reboot'; readonly delay: number }
  | { readonly kind: 'VM_destroy' }
  | { readonly kind: 'VM_remove' };

export type AtomKind = Atom['kind'];

/** Progress weight (§7.1): VM_save and VM_restore weigh 10, every other atom 1. */
export function atomWeight(atom: Atom): number {
  return (atom.kind as string) === 'VM_save' || (atom.kind as string) === 'VM_restore' ? 10 : 1;
}

export function describeAtom(atom: Atom): string {
  switch (atom.kind) {
    case 'VM_build':
      return `VM_build(${atom.force})`;
    case 'VM_create_device_model':
      return `VM_create_device_model(${atom.saveState})`;
    case 'VM_shutdown_domain':
      return `VM_shutdown_domain(${atom.reason}, ${atom.delay})`;
    default:
      return atom.kind;
  }
}
