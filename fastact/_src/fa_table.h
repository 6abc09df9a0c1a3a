/* The layout of fastact's kernel table: the _kernels_<level> modules (and the C driver of
 * tools/kernel_driver.py) fill it, fastact._runner looks kernels up in it. The sizes come
 * from fastact/_activations.py (C_MACROS), which setup.py passes as -D macros. */
#ifndef FA_TABLE_H
#define FA_TABLE_H

#if !defined(FA_NKERNELS) || !defined(FA_NENTRIES) || !defined(FA_NPARAMS) \
    || !defined(FA_TWO_INPUTS) || !defined(FA_TWO_OUTPUTS)
#error "define fastact/_activations.py's C_MACROS (setup.py does)"
#endif

/* the slot of kernel x entry point x dtype (0 float32, 1 float64, 2 float16, 3 bfloat16:
 * fastact/_activations.py's C_TYPES) */
#define FA_NTYPES 4
#define FA_SLOT(kernel, entry, dtype) (((kernel) * FA_NENTRIES + (entry)) * FA_NTYPES + (dtype))
#define FA_TABLE_SIZE (FA_NKERNELS * FA_NENTRIES * FA_NTYPES)
/* how many inputs an entry point takes and how many outputs it gives: 1 or 2 */
#define FA_NIN(entry) (1 + ((FA_TWO_INPUTS >> (entry)) & 1))
#define FA_NOUT(entry) (1 + ((FA_TWO_OUTPUTS >> (entry)) & 1))

#endif
