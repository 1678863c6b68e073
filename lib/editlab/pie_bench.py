"""PIE-Bench's fixed vocabulary (Ju et al., 2024, Sec. 4): its ten edit types and four picture categories.

A leaf module: the world, the benchmark format and the InstructPix2Pix data all read these from here, and it
imports nothing of the package.
"""

# The edit types by id (PIE-Bench's folders are named "<id>_<name>_<count>").
EDIT_TYPES: dict[int, str] = {
    0: "random", 1: "change_object", 2: "add_object", 3: "delete_object", 4: "change_attribute_content",
    5: "change_attribute_pose", 6: "change_attribute_color", 7: "change_attribute_material",
    8: "change_background", 9: "change_style",
}

# The scene categories, in PIE-Bench's folder order (1_animal, 2_human, 3_indoor, 4_outdoor).
CATEGORIES = ("animal", "human", "indoor", "outdoor")
