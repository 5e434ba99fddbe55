/* cmd_export.h — `ltbench export RUN_DIR --format safetensors [--out FILE]`:
 * a finished run's trained model (its ckpt_final.ltc) as a safetensors file
 * under PyTorch state_dict names (engine/lt_model_st.h). Returns the exit
 * code: 0 written, 1 failure (message on stderr), 2 usage error. */
#ifndef LT_CMD_EXPORT_H
#define LT_CMD_EXPORT_H

int lt_cmd_export(int argc, char **argv);

#endif
