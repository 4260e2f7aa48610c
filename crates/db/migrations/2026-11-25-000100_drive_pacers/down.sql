DROP TABLE drive_pacers;
